"""Calling ``components(register)`` of every module in a built-in plugin package, in name order."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable


def register_package(package_name: str, register: Callable) -> None:
    package = importlib.import_module(package_name)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package_name}.{info.name}")
        hook = getattr(module, "components", None)
        if hook is not None:
            hook(register)
