"""Compatibility with the official SEMICON code (aassxun/SEMICON): state-dict names and checkpoints.

Not a component package (no hook): :mod:`hashkit_plugins.semicon_compat.checkpoint` maps the official
``SEMICON`` module's state-dict names onto the hashkit model built from ``recipes/semicon.toml`` and loads
an official ``model.pth`` into it.
"""

from hashkit_plugins.semicon_compat.checkpoint import (
    hashkit_name,
    load_official_checkpoint,
    official_name,
    to_official_state_dict,
)

__all__ = ["hashkit_name", "load_official_checkpoint", "official_name", "to_official_state_dict"]
