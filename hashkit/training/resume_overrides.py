"""Which ``--set`` overrides ``hashkit train --resume`` accepts.

A resumed run must end exactly as an uninterrupted one, so it uses the recipe saved in its directory. An
override that would change what is trained or measured (``data.batch_size``, ``optimizer.lr``, a component,
the evaluation) is refused with one line naming the key. The keys in :data:`RESUME_SAFE_KEYS` only change
where and how visibly the run goes on; they are accepted and recorded in ``environment.json``
(``overrides``, and in ``resumed_from`` for earlier sessions). An override that sets a key to the value the
run already has is harmless and accepted too.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping

from hashkit.errors import RecipeError, RecipeUpgradeWarning

#: keys a resume may change: the device, data-loading workers, progress bars, TensorBoard mirroring
RESUME_SAFE_KEYS = frozenset({"train.device", "train.progress", "train.tensorboard", "data.num_workers"})


def _as_items(overrides: Mapping[str, Any] | Iterable[str] | None) -> list[tuple[str, Any]]:
    from hashkit.recipe.overrides import parse_set

    if not overrides:
        return []
    if isinstance(overrides, Mapping):
        return list(overrides.items())
    return [parse_set(item) for item in overrides]


def check_resume_overrides(recipe_file: Path, overrides: Mapping[str, Any] | Iterable[str] | None) -> dict[str, Any]:
    """The overrides to apply when resuming from ``recipe_file``; :class:`RecipeError` for one that changes the run."""
    from hashkit.recipe.load import load_recipe
    from hashkit.training.run_dir import resolved_recipe

    items = _as_items(overrides)
    changing = [(k, v) for k, v in items if k not in RESUME_SAFE_KEYS]
    if changing:
        with warnings.catch_warnings():  # an upgrade of an old saved recipe is reported once, by the resume's load
            warnings.simplefilter("ignore", RecipeUpgradeWarning)
            saved = resolved_recipe(load_recipe(recipe_file, saved_run=True))
            changed = [key for key, value in changing
                       if resolved_recipe(load_recipe(recipe_file, {key: value}, saved_run=True)) != saved]
        if changed:
            raise RecipeError(
                f"cannot change {changed[0]} when resuming: the run continues with the recipe saved in "
                f"{recipe_file} (a resume may only set {', '.join(sorted(RESUME_SAFE_KEYS))}); start a new run "
                "with --out to train with other values")
    return dict(items)
