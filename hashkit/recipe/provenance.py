"""Where each recipe key was set: a file (through ``extends``) or ``--set`` on the command line."""

from __future__ import annotations

import contextlib
import contextvars

__all__ = ["from_command_line", "key_origin", "recipe_provenance"]


#: ``dotted key -> file or "--set"`` of the recipe being validated (see :func:`recipe_provenance`)
_PROVENANCE: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("recipe_provenance", default={})


@contextlib.contextmanager
def recipe_provenance(provenance: dict[str, str]):
    """Validate under ``provenance``: a number given for a str field is accepted only from ``--set``."""
    token = _PROVENANCE.set(provenance)
    try:
        yield
    finally:
        _PROVENANCE.reset(token)


def from_command_line(key: str) -> bool:
    return key_origin(_PROVENANCE.get(), key, None) == "--set"


def key_origin(provenance: dict[str, str], key: str, default: str | None) -> str | None:
    """The file (or ``--set``) that defined ``key`` or its nearest enclosing table."""
    probe = key
    while probe:
        if probe in provenance:
            return provenance[probe]
        cut = max(probe.rfind("."), probe.rfind("["))
        probe = probe[:cut] if cut > 0 else ""
    return default
