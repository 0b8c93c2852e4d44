"""``register_package``: register every component module of a plugin package.

A plugin package can keep one component per module, each module with a ``components(register)`` function,
and implement its hook as::

    import hashkit
    from hashkit.plugin_package import register_package

    @hashkit.hookimpl
    def hashkit_register(register):
        register_package(__name__, register)

Modules are visited in name order; modules whose name starts with ``_`` (shared private helpers) are
skipped. hashkit's built-in packages (``hashkit_plugins.<kind>``) are laid out this way.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable


def register_package(package_name: str, register: Callable) -> None:
    """Call ``components(register)`` of every public module of ``package_name``, in name order."""
    package = importlib.import_module(package_name)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package_name}.{info.name}")
        hook = getattr(module, "components", None)
        if hook is not None:
            hook(register)
