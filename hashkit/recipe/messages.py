"""How recipe errors name types and values: the vocabulary of the one-line messages.

:class:`Invalid` carries a problem's dotted key and message while a table is being checked; the loader turns
it into a :class:`~hashkit.errors.RecipeError` naming the file that set the key.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal

import attrs

__all__ = ["Invalid", "found", "type_name"]


def type_name(tp: Any) -> str:
    if tp is type(None):
        return "none"
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin in (tuple, list):
        args = typing.get_args(tp)
        inner = type_name(args[0]) if args else "any"
        return f"list of {inner}"
    if origin is dict:
        return "table"
    if attrs.has(tp):
        return f"table ({tp.__name__})"
    return getattr(tp, "__name__", str(tp))


def found(value: Any) -> str:
    kind = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "table"}.get(type(value), type(value).__name__)
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{kind} {text}"


class Invalid(Exception):
    """A value that does not fit: the dotted ``key`` and the ``message`` (without file and key)."""

    def __init__(self, key: str, message: str):
        self.key = key
        self.message = message
