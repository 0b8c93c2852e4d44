"""Recipes saved in run directories by older hashkit versions, brought up to the current schema on load.

A run directory keeps the recipe it was trained with (``recipe.toml``); ``eval``, ``encode``, ``gallery`` and
``train --resume`` read it back with :func:`~hashkit.recipe.load.load_recipe` ``(..., saved_run=True)``, which
calls :func:`upgrade_saved_recipe` on the parsed file first. Each change is unambiguous (the model and its
state dict stay the same) and is reported with a :class:`~hashkit.errors.RecipeUpgradeWarning`; a saved
recipe that cannot be upgraded without guessing is a :class:`~hashkit.errors.RecipeError` saying what
changed and how to edit the file. Recipe files a user writes are never upgraded: they get the current
schema's error.

Changes handled:

- ``[model.channel_interaction]`` (before nested components): the channel interaction is now a parameter of
  the component that inserts it. Next to ``[model.aggregation] name = "refine_branches"`` (the only built-in
  that read it) without an ``interaction``, the table moves to ``model.aggregation.interaction``: the same
  modules at the same places, so the checkpoint loads unchanged.
"""

from __future__ import annotations

from typing import Any

from hashkit.errors import RecipeError

__all__ = ["upgrade_saved_recipe"]


def upgrade_saved_recipe(data: dict[str, Any], file: str) -> list[str]:
    """Bring ``data`` (a run's parsed ``recipe.toml``) to the current schema in place; a note per change.

    Raises :class:`RecipeError` (naming ``file``, the key and the edit to make) for what cannot be upgraded
    safely."""
    notes = []
    model = data.get("model")
    if isinstance(model, dict) and "channel_interaction" in model:
        notes.append(_nest_channel_interaction(model, file))
    return notes


def _nest_channel_interaction(model: dict[str, Any], file: str) -> str:
    table = model["channel_interaction"]
    aggregation = model.get("aggregation")
    if isinstance(aggregation, str):  # `aggregation = "refine_branches"`: a component given by its name alone
        aggregation = {"name": aggregation}
    name = aggregation.get("name") if isinstance(aggregation, dict) else None
    change = ("this run was saved by an older hashkit: [model.channel_interaction] is now the 'interaction' "
              "parameter of the component that inserts it")
    if name != "refine_branches" or "interaction" in aggregation:
        inserted = ("it already has an 'interaction'" if name == "refine_branches"
                    else f"aggregation {name!r} is not refine_branches, which was the only built-in that read it")
        raise RecipeError(f"{change}, and it cannot be moved for you ({inserted}): in {file}, move the table into "
                          "the component that inserts the interaction (e.g. [model.aggregation] interaction = "
                          "{name = \"icon\"}), or delete it if none does", file=file, key="model.channel_interaction")
    model["aggregation"] = {**aggregation, "interaction": model.pop("channel_interaction")}
    label = table.get("name", "?") if isinstance(table, dict) else table
    return (f"{file}: {change}; loaded as [model.aggregation] interaction = {{name = \"{label}\", ...}} (same model "
            "and weights). To silence this, move the table there in the file")
