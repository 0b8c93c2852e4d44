"""hashkit: a plugin framework for learning-to-hash in fine-grained image retrieval.

Public API (kept small on purpose; everything else is importable from its module):

- :func:`load_recipe` / :func:`build` / :func:`make_component`: recipes and composition;
- :class:`HashingModel`: compose a model directly from component instances;
- :func:`encode`: ±1 codes of image files or PIL images with a model or a trained run, in one call;
- :data:`hookimpl`: mark a plugin's ``hashkit_register(register)`` hook;
- :func:`get_registry`: the loaded registry (plugins load lazily on first access).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from hashkit.hookspecs import hookimpl

__all__ = [
    "__version__",
    "hookimpl",
    "load_recipe",
    "build",
    "make_component",
    "HashingModel",
    "encode",
    "get_registry",
]


def __getattr__(name: str) -> Any:  # lazy: importing hashkit must not import torch or scan plugins
    if name == "load_recipe":
        from hashkit.recipe import load_recipe

        return load_recipe
    if name in ("build", "make_component"):
        import hashkit.assemble as _build

        return getattr(_build, name)
    if name == "HashingModel":
        from hashkit.model import HashingModel

        return HashingModel
    if name == "encode":
        from hashkit.codes.encoder import encode

        return encode
    if name == "get_registry":
        from hashkit.registry import get_registry

        return get_registry
    raise AttributeError(f"module 'hashkit' has no attribute {name!r}")
