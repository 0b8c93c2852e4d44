"""Writing recipe data back as TOML (the resolved recipe saved beside every run).

Covers every TOML type: tables, arrays of tables, arrays, strings, ints, floats (incl. inf/nan), bools,
offset and local date-times, local dates and local times. Round trip: ``tomllib.loads(dumps_toml(d)) == d``.
"""

from __future__ import annotations

import datetime
import math
import re
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else _string(k)


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        # isoformat is TOML's RFC 3339 form: 1979-05-27T07:32:00+00:00, 1979-05-27, 07:32:00.999999
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_scalar(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def toml_value(v: Any) -> str:
    """``v`` as one TOML literal, e.g. the value of a ``--set key=value``."""
    return _scalar(v)


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _emit(data: dict[str, Any], prefix: str, out: list[str]) -> None:
    simple = [(k, v) for k, v in data.items() if not isinstance(v, dict) and not _is_table_array(v)]
    for k, v in simple:
        out.append(f"{_key(k)} = {_scalar(v)}")
    for k, v in data.items():
        name = f"{prefix}.{_key(k)}" if prefix else _key(k)
        if isinstance(v, dict):
            out.append("")
            out.append(f"[{name}]")
            _emit(v, name, out)
        elif _is_table_array(v):
            for item in v:
                out.append("")
                out.append(f"[[{name}]]")
                _emit(item, name, out)


def dumps_value(value: Any) -> str:
    """One value as a TOML literal (an inline table for a dict): the right-hand side of ``--set key=...``."""
    return _scalar(value)


def dumps_toml(data: dict[str, Any]) -> str:
    out: list[str] = []
    _emit(data, "", out)
    return "\n".join(out).strip() + "\n"
