"""``train(recipe, out_dir)``: the Python entry point behind ``hashkit train``."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from hashkit.errors import RecipeError
from hashkit.recipe.load import load_recipe
from hashkit.recipe.schema import Recipe
from hashkit.training import ddp
from hashkit.training.run_dir import RECIPE_FILE, prepare_run_dir, record_split, write_environment, write_recipe
from hashkit.training.device import configure_determinism, pick_device
from hashkit.training.trainer import train_length, write_report


def _load(recipe_or_path: Recipe | str | Path | Mapping[str, Any] | None, out_dir: Path, resume: bool,
          overrides: Mapping[str, Any] | Iterable[str] | None) -> Recipe:
    if resume:
        # a resumed run uses the recipe saved in its directory (overrides apply on top, e.g. train.progress)
        prepare_run_dir(out_dir, resume=True)
        return load_recipe(out_dir / RECIPE_FILE, overrides, saved_run=True)
    if recipe_or_path is None:
        raise RecipeError("no recipe given (pass a recipe, or resume=True with an existing run directory)")
    if isinstance(recipe_or_path, Recipe):
        if overrides:
            raise RecipeError("overrides apply when loading: pass a recipe path or data, not a loaded Recipe")
        return recipe_or_path
    return load_recipe(recipe_or_path, overrides)


def train(recipe_or_path: Recipe | str | Path | Mapping[str, Any] | None, out_dir: str | Path, *,
          overrides: Mapping[str, Any] | Iterable[str] | None = None, resume: bool = False,
          code_lengths: Iterable[int] | None = None, echo: bool = True) -> dict[str, Any]:
    """Train every code length of a recipe into ``out_dir`` and evaluate; returns the report (all ranks).

    ``resume=True`` continues the run in ``out_dir`` from its last checkpoints (the saved recipe is used).
    ``code_lengths`` restricts training to these lengths (default: the recipe's ``code_lengths``). Under
    ``torchrun`` every rank calls this; rank 0 writes the files and returns the full report, the others
    return ``{}``. ``echo=False`` does not print the report table (``hashkit bench`` runs many).
    """
    started = time.time()
    out_dir = Path(out_dir)
    recipe = _load(recipe_or_path, out_dir, resume, overrides)
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
    try:
        device = pick_device(recipe.train.device, info)
        if info.is_main:
            prepare_run_dir(out_dir, resume=resume)
            if not resume:
                write_recipe(out_dir, recipe, tuple(x for x in lengths if x))
            write_environment(out_dir, device, info.world_size, resumed=resume)
        ddp.barrier(info)
        from hashkit.assemble import build_dataset

        data = build_dataset(recipe)
        if info.is_main:
            record_split(out_dir, data, resume=resume)
        results: dict[str, Any] = {}
        for length in lengths:
            per_length = train_length(recipe, data, length, out_dir, device, info, resume=resume)
            if per_length is not None:
                results[str(length) if length else "real"] = per_length
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
