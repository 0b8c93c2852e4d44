"""Recipes: TOML files that assemble components, validated against their typed configs."""

from hashkit.recipe.load import load_recipe
from hashkit.recipe.schema import ComponentRef, Recipe

__all__ = ["ComponentRef", "Recipe", "load_recipe"]
