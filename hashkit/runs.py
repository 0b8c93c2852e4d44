"""Reading a finished (or interrupted) run directory back: ``load_run(run_dir, code_length=None)``.

The model comes from ``L{bits}/selected.safetensors`` when the run selected a model other than the last
(``train.selection`` = ``best_val`` / ``best_query``) and ``which="selected"``, else from the last checkpoint.
It is returned in eval mode on the CPU, with the protocol's state (ADSH's ``B``) as plain tensors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import attrs
import torch
from torch import Tensor

from hashkit.errors import CheckpointError
from hashkit.model.hashing_model import HashingModel
from hashkit.recipe.schema import Recipe


@attrs.define
class LoadedRun:
    recipe: Recipe
    model: HashingModel
    code_length: int | None
    protocol_state: dict[str, Tensor]
    run_dir: Path
    #: "last" or "selected": which weights ``model`` holds
    which: str = "last"
    #: the protocol's database codes (``(n, L)`` ±1) of the loaded weights, when it has any
    database_codes: Tensor | None = None
    #: what they are: the protocol's ``database`` ("learned", "label" or "encoded")
    database_source: str = "encoded"
    #: the file the weights came from and its content digest (identifies the model, e.g. for resumable encodes)
    weights_file: Path | None = None
    weights_sha256: str = ""


def run_code_lengths(run_dir: Path) -> list[int]:
    """Code lengths with a checkpoint in ``run_dir``."""
    out = []
    for d in Path(run_dir).glob("L*"):
        if d.is_dir() and d.name[1:].isdigit() and (d / "checkpoint.safetensors").is_file():
            out.append(int(d.name[1:]))
    return sorted(out)


def load_run(run_dir: str | Path, code_length: int | None = None, *,
             which: Literal["last", "selected"] = "selected", overrides=None) -> LoadedRun:
    """The recipe, model (eval mode) and protocol state of one code length of a run (default: the first)."""
    from hashkit.assemble import build, build_dataset
    from hashkit.recipe.load import load_recipe
    from hashkit.training.checkpoint import load_checkpoint, load_module_state, split_prefix
    from hashkit.training.run_dir import RECIPE_FILE, length_dir
    from hashkit.training.selection import SELECTED
    from hashkit.training.trainer_checkpoint import CHECKPOINT
    from hashkit.training.validation import carve_validation

    run_dir = Path(run_dir)
    if not (run_dir / RECIPE_FILE).is_file():
        raise CheckpointError(f"{run_dir}: not a hashkit run directory (no {RECIPE_FILE})")
    recipe = load_recipe(run_dir / RECIPE_FILE, overrides, saved_run=True)
    if recipe.hash_head is None:
        code_length = None
    elif code_length is None:
        lengths = run_code_lengths(run_dir)
        if not lengths:
            raise CheckpointError(f"{run_dir}: no checkpoint found (no L<bits>/checkpoint.safetensors)")
        code_length = lengths[0]
    ldir = length_dir(run_dir, code_length)
    ckpt = ldir / CHECKPOINT
    tensors, meta, digest = load_checkpoint(ckpt, with_digest=True)
    data = build_dataset(recipe)
    if recipe.train.selection == "best_val":
        data, _ = carve_validation(data, recipe.train.val_fraction, recipe.seed)
    built = build(recipe, code_length, data=data)
    model = built.model
    protocol_state = split_prefix(tensors, "protocol.")
    built.protocol.setup(data.split("train").targets.float(), torch.Generator().manual_seed(0))
    built.protocol.load_state_dict(protocol_state)
    database_codes = built.protocol.database_codes()
    source, state, loaded = ckpt, split_prefix(tensors, "model."), "last"
    if which == "selected" and recipe.train.selection != "last" and (ldir / SELECTED).is_file():
        sel, _, digest = load_checkpoint(ldir / SELECTED, with_digest=True)
        source, state, loaded = ldir / SELECTED, split_prefix(sel, "model."), "selected"
        database_codes = sel.get("database_codes", database_codes)
    load_module_state(model, state, what="model state", path=source)
    model.eval()
    return LoadedRun(recipe=recipe, model=model, code_length=code_length, protocol_state=protocol_state,
                     run_dir=run_dir, which=loaded, database_codes=database_codes,
                     database_source=getattr(built.protocol, "database", "encoded"),
                     weights_file=source, weights_sha256=digest)
