"""``--set path.to.key=value`` overrides: parsing and applying them to recipe data."""

from __future__ import annotations

import re
import tomllib
from typing import Any, Iterable, Mapping

from hashkit.errors import RecipeError, shorten

_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_\-]*)(?:\[(\d+)\])?$")


def parse_value(text: str) -> Any:
    """A TOML literal (``3``, ``0.1``, ``true``, ``[12, 24]``, ``"x"``, ``{a = 1}``) or else the raw string.

    Nesting is limited like in recipe files (:data:`~hashkit.recipe.toml_loader.MAX_NESTING`).
    """
    from hashkit.recipe.toml_loader import MAX_NESTING, nesting_depth

    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    except RecursionError:
        value = None
    if value is None or nesting_depth(value) > MAX_NESTING - 1:
        raise RecipeError(f"--set value {shorten(text)} nests arrays or tables more than {MAX_NESTING} levels deep")
    return value


def parse_set(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise RecipeError(f"bad --set {shorten(item)}: expected path.to.key=value")
    key, _, value = item.partition("=")
    key = key.strip()
    if not key or not all(_SEGMENT.match(seg) for seg in key.split(".")):
        raise RecipeError(f"bad --set {shorten(item)}: {shorten(key)} is not a dotted key like model.backbone.depth")
    return key, parse_value(value.strip())


def apply_overrides(data: dict[str, Any], overrides: Mapping[str, Any] | Iterable[str] | None,
                    prov: dict[str, str] | None = None) -> dict[str, Any]:
    """Set each dotted key (``a.b[0].c``) in ``data`` in place; ``overrides`` is a mapping or ``--set`` strings."""
    if not overrides:
        return data
    items = overrides.items() if isinstance(overrides, Mapping) else (parse_set(s) for s in overrides)
    for key, value in items:
        node: Any = data
        segments = key.split(".")
        for depth, seg in enumerate(segments):
            m = _SEGMENT.match(seg)
            if not m:
                raise RecipeError(f"bad override key {shorten(key)}")
            name, index = m.group(1), m.group(2)
            last = depth == len(segments) - 1
            where = ".".join(segments[: depth + 1])
            if not isinstance(node, dict):
                raise RecipeError(f"cannot set {key!r}: {'.'.join(segments[:depth])} is not a table", key=key)
            if index is None:
                if last:
                    node[name] = value
                else:
                    node = node.setdefault(name, {})
            else:
                seq = node.get(name)
                i = int(index)
                if not isinstance(seq, list) or i >= len(seq):
                    size = len(seq) if isinstance(seq, list) else 0
                    raise RecipeError(f"cannot set {key!r}: {name} has {size} entries", key=where)
                if last:
                    seq[i] = value
                else:
                    node = seq[i]
        if prov is not None:
            prov[key] = "--set"
    return data
