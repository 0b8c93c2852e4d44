"""Turning recipe tables into typed attrs config instances, with one-line errors.

Supported field types: ``int``, ``float`` (ints accepted), ``bool``, ``str``, ``pathlib.Path``,
``Literal[...]``, ``X | None``, ``tuple[X, ...]``, ``tuple[X, Y]``, ``list[X]``, ``dict[str, X]``, nested attrs
classes, and ``Any``; fields declared with :func:`hashkit.interfaces.nested` / ``nested_list`` hold component
references, validated against the registry like top-level component tables (component references and
configs are checked by the same mutually recursive functions, so they live together here). Unknown keys are
errors that name the closest field; attrs validators run and their messages are reported with the key.

Neighbours: :mod:`~hashkit.recipe.messages` (how types and values are named in errors),
:mod:`~hashkit.recipe.provenance` (which file or ``--set`` set a key), :mod:`~hashkit.recipe.describe`
(configs back to plain data).
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import attrs

from hashkit.errors import RecipeError
from hashkit.interfaces.component_ref import ComponentRef, nested_kind
from hashkit.recipe.messages import Invalid, found, type_name
from hashkit.recipe.provenance import from_command_line, key_origin


def coerce_value(tp: Any, value: Any, key: str) -> Any:
    """Check and convert ``value`` to type ``tp``; raise ``Invalid`` naming ``key``."""
    if tp is Any or tp is typing.Any:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        if value in args and type(value) in {type(a) for a in args}:
            return value
        close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
        hint = f"; closest: {close[0]!r}" if close else ""
        raise Invalid(key, f"expected {type_name(tp)}, found {found(value)}{hint}")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce_value(arg, value, key)
            except Invalid as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise Invalid(key, f"expected {type_name(tp)}, found {found(value)}")
    if tp is type(None):
        if value is None:
            return None
        raise Invalid(key, f"expected none, found {found(value)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise Invalid(key, f"expected bool, found {found(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise Invalid(key, f"expected int, found {found(value)}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise Invalid(key, f"expected float, found {found(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool) and from_command_line(key):
            return str(value)  # --set name=123 on a str field: the shell makes quoting awkward
        raise Invalid(key, f"expected str, found {found(value)}")
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise Invalid(key, f"expected a path (str), found {found(value)}")
    if origin in (tuple, list) or tp in (tuple, list):
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise Invalid(key, f"expected {type_name(tp)}, found {found(value)}")
        if not args:
            items = list(value)
        elif origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise Invalid(key, f"expected a list of {len(args)} values, found {found(value)}")
            items = [coerce_value(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value))]
        else:
            items = [coerce_value(args[0], v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise Invalid(key, f"expected a table, found {found(value)}")
        vt = args[1] if len(args) == 2 else Any
        return {k: coerce_value(vt, v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(tp, type) and attrs.has(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise Invalid(key, f"expected a table ({tp.__name__}), found {found(value)}")
        return _build(tp, value, key)
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise Invalid(key, f"expected {type_name(tp)}, found {found(value)}")
    return value


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    attrs.resolve_types(cls)
    fields = {f.name: f for f in attrs.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1) if len(key) < 200 else []
            hint = f"; closest: {close[0]!r}" if close else ""
            known = ", ".join(fields) if fields else "(no parameters)"
            raise Invalid(dotted, f"unknown key{hint}; expected one of: {known}")
        nested = nested_kind(fields[key])
        if nested is not None:
            kwargs[key] = _nested_value(*nested, value, dotted)
        else:
            kwargs[key] = coerce_value(fields[key].type, value, dotted)
    for name, field in fields.items():  # nested defaults ("bap") become validated references too
        nested = nested_kind(field)
        if nested is not None and name not in kwargs and field.default is not attrs.NOTHING:
            kwargs[name] = _resolved_default(field.default, f"{prefix}.{name}" if prefix else name)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        # attrs validators: find which field the message talks about
        bad = prefix
        msg = str(exc)
        for name in fields:
            if f"'{name}'" in msg or msg.startswith(name):
                bad = f"{prefix}.{name}" if prefix else name
                break
        if isinstance(exc, ValueError) and exc.args and isinstance(exc.args[0], str) and len(exc.args) > 1:
            msg = exc.args[0]
        raise Invalid(bad, f"invalid value: {msg}") from None


def component_ref(kind: str, value: Any, key: str, *, allow_weight: bool = False) -> ComponentRef:
    """A component table ``{name = ..., <parameters>}`` (or just its name) of ``kind`` at recipe key ``key``,
    validated against the registered component's config class; raises ``Invalid`` naming the key."""
    from hashkit.errors import UnknownComponentError
    from hashkit.registry import get_registry

    if isinstance(value, ComponentRef):
        if value.kind != kind:
            raise Invalid(key, f"expected a {kind}, found {value.kind} {value.name!r}")
        return value if value.config is not None else _resolved_default(value, key)
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise Invalid(key, f"expected a {kind} table with a 'name' key (or a {kind} name), found {found(value)}")
    params = dict(value)
    name = params.pop("name", None)
    if not isinstance(name, str):
        raise Invalid(f"{key}.name", f"expected a {kind} name (str), found {found(name)}")
    weight = 1.0
    if allow_weight and "weight" in params:
        weight = coerce_value(float, params.pop("weight"), f"{key}.weight")
    registry = get_registry()
    cut_off = re.fullmatch(r"(.+)@(\d+)", name)
    if (kind, name) not in registry and cut_off and (kind, f"{cut_off.group(1)}@k") in registry:
        # "map@100" stands for {name = "map@k", k = [100]}: any registered "<base>@k" with a `k` parameter
        if "k" in params:
            raise Invalid(f"{key}.k", f"{name!r} gives k in its name: leave out 'k' or name {cut_off.group(1)}@k")
        name, params["k"] = f"{cut_off.group(1)}@k", [int(cut_off.group(2))]
    try:
        entry = registry.get(kind, name)
    except UnknownComponentError as exc:
        raise Invalid(f"{key}.name", str(exc)) from None
    return ComponentRef(kind=kind, name=name, config=_build(entry.config, params, key), weight=weight, key=key)


def checked_component_ref(kind: str, value: Any, key: str) -> ComponentRef:
    """:func:`component_ref` raising :class:`RecipeError` (for tables made in code, not read from a file)."""
    try:
        return component_ref(kind, value, key)
    except Invalid as fail:
        raise RecipeError(fail.message, key=fail.key) from None


def _nested_value(kind: str, many: bool, value: Any, key: str) -> Any:
    if value is None and not many:
        return None
    if not many:
        return component_ref(kind, value, key)
    if isinstance(value, (dict, str, ComponentRef)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise Invalid(key, f"expected a list of {kind} tables, found {found(value)}")
    return tuple(component_ref(kind, item, f"{key}[{i}]") for i, item in enumerate(value))


def _resolved_default(default: Any, key: str) -> Any:
    if isinstance(default, ComponentRef):
        return component_ref(default.kind, {"name": default.name}, key)
    if isinstance(default, tuple):
        return tuple(_resolved_default(item, f"{key}[{i}]") for i, item in enumerate(default))
    return default


def build_config(cls: type, data: dict[str, Any] | None, *, key: str = "", file: str | None = None,
                 provenance: dict[str, str] | None = None) -> Any:
    """Build ``cls`` from ``data``; raise :class:`RecipeError` naming the file, key, expectation and finding."""
    try:
        return _build(cls, dict(data or {}), key)
    except Invalid as fail:
        origin = key_origin(provenance or {}, fail.key, file)
        raise RecipeError(fail.message, file=origin, key=fail.key) from None


