"""Reading recipe TOML files with ``extends`` inheritance (deep merge) and key provenance.

Limits: a recipe and every file it extends must be a regular file (not a device, a FIFO or ``/dev/stdin``,
which would block or never end) of at most :data:`MAX_RECIPE_BYTES` (1 MiB), and tables and arrays may be
nested at most :data:`MAX_NESTING` levels deep (in files and in ``--set`` values alike).
"""

from __future__ import annotations

import copy
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

from hashkit.errors import RecipeError

#: a recipe ``extends`` path that starts with this prefix is looked up among the installed recipes
BUILTIN_PREFIX = "hashkit:"
#: the largest recipe file read (bytes)
MAX_RECIPE_BYTES = 1 << 20
#: the deepest nesting of tables and arrays accepted in a recipe
MAX_NESTING = 32


def nesting_depth(value: Any) -> int:
    """How deeply tables and arrays nest in ``value`` (a scalar is 0), computed without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_toml(text: str, where: str, *, file: str | None = None, key: str | None = None) -> dict[str, Any]:
    """``tomllib.loads`` with the nesting limit; one-line :class:`RecipeError` naming ``where``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"invalid TOML in {where}: {exc}", file=file, key=key) from None
    except RecursionError:
        data = None
    if data is None or nesting_depth(data) > MAX_NESTING:
        raise RecipeError(f"{where} nests tables or arrays more than {MAX_NESTING} levels deep", file=file, key=key)
    return data


def read_recipe_file(path: Path) -> str:
    """The text of a recipe file: a regular file of at most :data:`MAX_RECIPE_BYTES`, UTF-8."""
    shown = str(path)
    try:
        info = os.stat(path)
    except OSError as exc:
        raise RecipeError(f"cannot read recipe: {exc.strerror}", file=shown) from None
    if not stat.S_ISREG(info.st_mode):
        raise RecipeError("not a regular file (a recipe or an extended file must be a regular file, not a "
                          "device, pipe or directory)", file=shown)
    if info.st_size > MAX_RECIPE_BYTES:
        raise RecipeError(f"{info.st_size:,} bytes is more than the {MAX_RECIPE_BYTES:,}-byte limit of a recipe "
                          "file", file=shown)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_RECIPE_BYTES + 1)
        if len(raw) > MAX_RECIPE_BYTES:
            raise RecipeError(f"more than the {MAX_RECIPE_BYTES:,}-byte limit of a recipe file", file=shown)
        return raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"cannot read recipe: {exc}", file=shown) from None


def builtin_recipe_dir() -> Path:
    """The ``recipes/`` directory shipped with hashkit (repository checkout or installed package data)."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here.parent / "recipes", here / "recipes"):
        if candidate.is_dir():
            return candidate
    return here.parent / "recipes"


def resolve_recipe_path(name: str | Path, *, relative_to: Path | None = None) -> Path:
    """A path as given, relative to the including file, or a built-in recipe name (``semicon-demo``,
    ``generic/dpsh``: a path under ``recipes/`` without ``.toml``)."""
    text = str(name)
    if text.startswith(BUILTIN_PREFIX):
        text = text[len(BUILTIN_PREFIX):]
        return builtin_recipe_dir() / (text if text.endswith(".toml") else text + ".toml")
    path = Path(text).expanduser()
    if not path.is_absolute() and relative_to is not None:
        path = relative_to / path
    if not path.exists() and not text.endswith(".toml") and not Path(text).is_absolute():
        builtin = builtin_recipe_dir() / (text + ".toml")
        if builtin.exists():
            return builtin
    return path


def _swaps_component(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return "name" in old and "name" in new and old["name"] != new["name"]


def _is_component_array(value: Any) -> bool:
    """An array of component tables (``[[losses]]``, ``[[model.attention]]``): every entry has a ``name``."""
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and "name" in v for v in value)


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``: tables merge key by key, other values (plain arrays included) are replaced.

    - A component table whose ``name`` changes is replaced whole: the parent's parameters belong to the
      parent's component (``[model.backbone] name = "tiny_cnn"`` in a child drops resnet50's ``weights``).
    - An array of tables over an array of component tables merges **by position**: entry ``i`` of the child
      is merged over entry ``i`` of the parent when it keeps its ``name`` (or names none), and replaces it
      when it names another component. The child's array sets the length: extra parent entries are dropped,
      extra child entries are appended. So ``[[model.attention]] alpha = 0.3`` changes SEM's ``alpha`` alone.
    """
    out = copy.deepcopy(base)
    for key, value in top.items():
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and not _swaps_component(old, value):
            out[key] = deep_merge(old, value)
        elif _is_component_array(old) and isinstance(value, list) and all(isinstance(v, dict) for v in value):
            out[key] = [deep_merge(old[i], entry) if i < len(old) and not _swaps_component(old[i], entry)
                        else copy.deepcopy(entry) for i, entry in enumerate(value)]
        else:
            out[key] = copy.deepcopy(value)
    return out


def _record(prov: dict[str, str], data: Any, file: str, prefix: str = "") -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{prefix}.{key}" if prefix else key
            prov[path] = file
            _record(prov, value, file, path)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            _record(prov, value, file, f"{prefix}[{i}]")


def load_toml_with_extends(path: Path, *, _chain: tuple[Path, ...] = ()) -> tuple[dict[str, Any], dict[str, str]]:
    """Load ``path`` and everything it extends; return the merged data and ``dotted key -> file``."""
    path = Path(path)
    shown = str(path)
    if not path.exists():
        origin = f" (extended by {_chain[-1]})" if _chain else ""
        raise RecipeError(f"recipe file not found{origin}", file=shown)
    resolved = path.resolve()
    if resolved in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, resolved))
        raise RecipeError(f"cyclic extends: {cycle}", file=shown, key="extends")
    data = parse_toml(read_recipe_file(path), "the recipe", file=shown)

    parents = data.pop("extends", None)
    if parents is None:
        parents = []
    elif isinstance(parents, str):
        parents = [parents]
    elif not (isinstance(parents, list) and all(isinstance(p, str) for p in parents)):
        raise RecipeError(
            f"expected a file name or a list of file names, found {type(parents).__name__} {parents!r}",
            file=shown,
            key="extends",
        )
    merged: dict[str, Any] = {}
    prov: dict[str, str] = {}
    for parent in parents:
        parent_path = resolve_recipe_path(parent, relative_to=path.parent)
        if not parent_path.exists():
            raise RecipeError(f"extends a file that does not exist: {parent_path}", file=shown, key="extends")
        pdata, pprov = load_toml_with_extends(parent_path, _chain=(*_chain, resolved))
        merged = deep_merge(merged, pdata)
        prov.update(pprov)
    merged = deep_merge(merged, data)
    _record(prov, data, shown)
    return merged, prov
