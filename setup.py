"""Package list for setuptools: the core ``hashkit`` and the built-in plugins in ``plugins/``.

The ``plugins/`` directory is installed as the ``hashkit_plugins`` package (a generic top-level ``plugins``
name would collide with other software). Metadata lives in pyproject.toml.
"""

from setuptools import find_packages, setup

core = find_packages(include=["hashkit", "hashkit.*"])
builtin = ["hashkit_plugins" + name[len("plugins"):] for name in find_packages(include=["plugins", "plugins.*"])]

setup(packages=core + builtin, package_dir={"hashkit_plugins": "plugins"})
