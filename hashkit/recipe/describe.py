"""Typed configs back to plain data: a config as its recipe table, and the field list ``hashkit components``
shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from hashkit.interfaces.component_ref import ComponentRef, nested_kind
from hashkit.recipe.messages import type_name

__all__ = ["config_to_dict", "describe_fields"]


def config_to_dict(config: Any) -> Any:
    """An attrs config as plain TOML-compatible data (tuples as lists, paths as str, None dropped); a nested
    component as its recipe table ``{name = ..., <parameters>}``."""
    if isinstance(config, ComponentRef):
        return {"name": config.name, **(config_to_dict(config.config) if config.config is not None else {})}
    if attrs.has(type(config)):
        out = {}
        for f in attrs.fields(type(config)):
            value = getattr(config, f.name)
            if value is None:
                continue
            out[f.name] = config_to_dict(value)
        return out
    if isinstance(config, (tuple, list)):
        return [config_to_dict(v) for v in config]
    if isinstance(config, dict):
        return {k: config_to_dict(v) for k, v in config.items() if v is not None}
    if isinstance(config, Path):
        return str(config)
    return config


def describe_fields(cls: type) -> list[dict[str, Any]]:
    """``[{name, type, default, doc}]`` for ``hashkit components``."""
    attrs.resolve_types(cls)
    rows = []
    for f in attrs.fields(cls):
        if not f.init:
            continue
        default = f.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory() if not default.takes_self else None
        nested = nested_kind(f)
        if nested is None:
            shown = type_name(f.type)
        else:
            shown = f"list of {nested[0]} components" if nested[1] else f"{nested[0]} component"
        rows.append({
            "name": f.name,
            "type": shown,
            "default": config_to_dict(default) if default is not attrs.NOTHING else None,
            "required": default is attrs.NOTHING,
            "doc": f.metadata.get("doc", ""),
        })
    return rows
