"""``train(recipe, out_dir)``: the Python entry point behind ``hashkit train``.

Order of a start, so that a run that cannot start leaves nothing behind: the recipe is validated, the device
picked, the dataset loaded (a missing root fails here) and the output directory checked (absent or empty,
writable) before anything is written. If the start still fails after the run directory was written (a model
that does not build, a full disk), everything the start wrote is removed again as long as no training step
was logged and no checkpoint written, so the same command can simply be run again.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from hashkit.errors import RecipeError
from hashkit.recipe.load import load_recipe
from hashkit.recipe.schema import Recipe
from hashkit.training import ddp
from hashkit.training.device import configure_determinism, pick_device
from hashkit.training.resume_overrides import check_resume_overrides
from hashkit.training.run_dir import (
    RECIPE_FILE,
    prepare_run_dir,
    record_split,
    started_training,
    write_environment,
    write_recipe,
)
from hashkit.training.trainer import train_length, write_report


def _load(recipe_or_path: Recipe | str | Path | Mapping[str, Any] | None, out_dir: Path, resume: bool,
          overrides: Mapping[str, Any] | Iterable[str] | None) -> tuple[Recipe, dict[str, Any]]:
    """The recipe to train and, on resume, the (resume-safe) overrides applied to the saved one."""
    if resume:
        if recipe_or_path is not None:
            raise RecipeError("a recipe and resume=True (--resume) were both given: a resumed run uses the recipe "
                              f"saved in {out_dir}; drop the recipe argument")
        prepare_run_dir(out_dir, resume=True)
        applied = check_resume_overrides(out_dir / RECIPE_FILE, overrides)
        return load_recipe(out_dir / RECIPE_FILE, applied, saved_run=True), applied
    if recipe_or_path is None:
        raise RecipeError("no recipe given (pass a recipe, or resume=True with an existing run directory)")
    if isinstance(recipe_or_path, Recipe):
        if overrides:
            raise RecipeError("overrides apply when loading: pass a recipe path or data, not a loaded Recipe")
        return recipe_or_path, {}
    return load_recipe(recipe_or_path, overrides), {}


def _remove_failed_start(out_dir: Path, created: bool) -> None:
    """Undo a start that failed before training began: the run directory as it was (absent or empty)."""
    if not out_dir.is_dir() or started_training(out_dir):
        return
    if created:
        shutil.rmtree(out_dir, ignore_errors=True)
    else:
        for child in out_dir.iterdir():
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)


def train(recipe_or_path: Recipe | str | Path | Mapping[str, Any] | None, out_dir: str | Path, *,
          overrides: Mapping[str, Any] | Iterable[str] | None = None, resume: bool = False,
          code_lengths: Iterable[int] | None = None, echo: bool = True) -> dict[str, Any]:
    """Train every code length of a recipe into ``out_dir`` and evaluate; returns the report (all ranks).

    ``resume=True`` continues the run in ``out_dir`` from its last checkpoints with the recipe saved there;
    ``overrides`` may then only set the keys of
    :data:`~hashkit.training.resume_overrides.RESUME_SAFE_KEYS` (recorded in ``environment.json``).
    ``code_lengths`` restricts training to these lengths (default: the recipe's ``code_lengths``). Under
    ``torchrun`` every rank calls this; rank 0 writes the files and returns the full report, the others
    return ``{}``. ``echo=False`` does not print the report table (``hashkit bench`` runs many).
    """
    from hashkit.output_paths import check_output_dir

    started = time.time()
    out_dir = Path(out_dir)
    recipe, resume_overrides = _load(recipe_or_path, out_dir, resume, overrides)
    lengths: tuple[int | None, ...]
    if code_lengths is not None:
        lengths = tuple(int(x) for x in code_lengths)
        unknown = [x for x in lengths if recipe.code_lengths and x not in recipe.code_lengths and resume]
        if unknown:
            raise RecipeError(f"code length {unknown[0]} is not one of this run's code lengths "
                              f"{list(recipe.code_lengths)}", key="code_lengths")
    else:
        lengths = recipe.code_lengths if recipe.hash_head is not None else (None,)
    if recipe.hash_head is None:
        lengths = (None,)
    configure_determinism(recipe.train.deterministic)
    device_type = "cuda" if recipe.train.device in ("auto", "cuda") and torch.cuda.is_available() \
        else torch.device(recipe.train.device if recipe.train.device != "auto" else "cpu").type
    info = ddp.init_distributed(device_type)
    created = False
    try:
        device = pick_device(recipe.train.device, info)
        from hashkit.assemble import build_dataset

        data = build_dataset(recipe)  # before writing anything: a missing dataset fails a start cleanly
        if info.is_main and not resume:
            check_output_dir(out_dir)
            created = not out_dir.exists()
        try:
            if info.is_main:
                prepare_run_dir(out_dir, resume=resume)
                if not resume:
                    write_recipe(out_dir, recipe, tuple(x for x in lengths if x))
                write_environment(out_dir, device, info.world_size, resumed=resume, overrides=resume_overrides)
                record_split(out_dir, data, resume=resume)
            ddp.barrier(info)
            results: dict[str, Any] = {}
            for length in lengths:
                per_length = train_length(recipe, data, length, out_dir, device, info, resume=resume)
                if per_length is not None:
                    results[str(length) if length else "real"] = per_length
        except BaseException:
            if info.is_main and not resume:
                _remove_failed_start(out_dir, created)
            raise
        if not info.is_main:
            return {}
        report = {
            "recipe": recipe.name,
            "dataset": data.name,
            "protocol": data.protocol,
            "training_protocol": recipe.protocol.name,
            "selection": recipe.train.selection,
            "eval_database": list(recipe.eval.database),
            "ties": recipe.eval.ties,
            "drop_last_item": recipe.eval.drop_last_item,
            "device": str(device),
            "world_size": info.world_size,
            "results": results,
            "time_s": round(time.time() - started, 1),
            "run_dir": str(out_dir),
        }
        text = write_report(out_dir, report)
        if echo:
            print(text, file=sys.stdout, flush=True)
        return report
    finally:
        ddp.shutdown(info)
