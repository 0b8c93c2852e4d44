"""Package list for setuptools: the core ``hashkit``, the built-in plugins in ``plugins/`` and the built-in
recipes in ``recipes/``.

The ``plugins/`` directory is installed as the ``hashkit_plugins`` package (a generic top-level ``plugins``
name would collide with other software); ``recipes/*.toml`` are installed as package data in
``hashkit/recipes/``, where :func:`hashkit.recipe.toml_loader.builtin_recipe_dir` finds them outside a
checkout. Metadata lives in pyproject.toml.
"""

from setuptools import find_packages, setup

core = find_packages(include=["hashkit", "hashkit.*"])
builtin = ["hashkit_plugins" + name[len("plugins"):] for name in find_packages(include=["plugins", "plugins.*"])]

setup(packages=core + builtin + ["hashkit.recipes"],
      package_dir={"hashkit_plugins": "plugins", "hashkit.recipes": "recipes"})
