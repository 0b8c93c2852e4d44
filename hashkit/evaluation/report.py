"""Result tables per code length: aligned text and JSON.

``results`` maps a code length (bits) to the dict returned by :func:`hashkit.evaluation.evaluate` (extra keys
such as ``protocol`` are kept). Scalar metrics become columns; lists and nested dicts (``pr_curve``) are left
to JSON and plots.
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping, Sequence

#: option keys printed once under the table instead of as columns
OPTION_KEYS = ("kind", "relevance", "zero_relevant", "drop_last_item", "map_at_k_norm", "empty_radius", "protocol",
               "code_length")
_FIRST = ("map", "map_tie_aware")
_COUNT_SUFFIXES = ("_queries",)


def _columns(results: Mapping[int, Mapping[str, Any]]) -> list[str]:
    seen: list[str] = []
    for res in results.values():
        for key, value in res.items():
            if key in OPTION_KEYS or key in seen or isinstance(value, (dict, list, str)) or value is None:
                continue
            seen.append(key)
    first = [k for k in _FIRST if k in seen]
    counts = [k for k in seen if k.startswith("num_") or k.endswith(_COUNT_SUFFIXES)]
    rest = [k for k in seen if k not in first and k not in counts]
    return first + rest + counts


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return "-" if value is None else str(value)


def format_table(results: Mapping[int, Mapping[str, Any]], columns: Sequence[str] | None = None,
                 title: str | None = None) -> str:
    """Render ``{bits: result}`` as an aligned text table (one row per code length) plus the options used."""
    cols = list(columns) if columns is not None else _columns(results)
    header = ["bits"] + cols
    rows = [[str(bits)] + [_cell(res.get(c)) for c in cols] for bits, res in sorted(results.items())]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = [title] if title else []
    lines.append("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    options: dict[str, Any] = {}
    for res in results.values():
        for key in OPTION_KEYS:
            if key in res and key != "code_length":
                options.setdefault(key, res[key])
    if options:
        lines.append("options: " + ", ".join(f"{k}={_cell(v)}" for k, v in options.items()))
    return "\n".join(lines)


def results_to_json(results: Mapping[int, Mapping[str, Any]], indent: int | None = 2) -> str:
    """``{bits: result}`` as JSON (keys are strings of the code length, sorted)."""
    return json.dumps({str(bits): dict(res) for bits, res in sorted(results.items())}, indent=indent,
                      sort_keys=False, allow_nan=True)
