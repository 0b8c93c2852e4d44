"""What a code length's ``checkpoint.safetensors`` holds for :class:`~hashkit.training.trainer.LengthTrainer`,
and restoring a trainer from it.

Tensors: the model, loss and protocol states, the optimiser's state, the RNG states and the current round's
visiting order; metadata: the position counters, the model-selection state, the optimiser hyper-parameters,
the loss scaler and the number of metrics-log lines written (the log is cut back to it on resume). The file
format itself (digests, atomic writes) is :mod:`hashkit.training.checkpoint`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import attrs
from torch import Tensor

from hashkit.errors import CheckpointError
from hashkit.training import ddp
from hashkit.training.checkpoint import (
    capture_rng,
    flatten_optimizer_state,
    load_checkpoint,
    load_module_state,
    restore_rng,
    save_checkpoint,
    split_prefix,
    unflatten_optimizer_state,
    with_prefix,
)

CHECKPOINT = "checkpoint.safetensors"


@attrs.define
class Position:
    """Where training stands: completed rounds, epochs of the current round, batches of the current epoch."""

    round: int = 0
    epoch: int = 0
    batch: int = 0
    step: int = 0
    finished: bool = False


def checkpoint_payload(trainer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """``(tensors, metadata)`` of ``trainer`` for its checkpoint file."""
    tensors = {**with_prefix(trainer.model.state_dict(), "model."),
               **with_prefix(trainer.losses.state_dict(), "losses."),
               **with_prefix(trainer.protocol.state_dict(), "protocol.")}
    optim_tensors, optim_meta = flatten_optimizer_state(trainer.optimizer.state_dict())
    rng_tensors, rng_meta = capture_rng()
    tensors.update(optim_tensors)
    tensors.update(rng_tensors)
    if trainer.order is not None:
        tensors["trainer.order"] = trainer.order
    meta = {
        "position": attrs.asdict(trainer.position),
        "best": attrs.asdict(trainer.selection.best),
        "optimizer": optim_meta,
        "rng": rng_meta,
        "scaler": {k: (float(v) if isinstance(v, (int, float)) else v)
                   for k, v in trainer.scaler.state_dict().items()},
        "recipe": trainer.recipe.name,
        "code_length": trainer.code_length,
        "world_size": trainer.info.world_size,
        "num_train": len(trainer.train_split),
        "log_lines": trainer.log.lines,
    }
    return tensors, meta


def save_trainer(trainer) -> None:
    """Write the checkpoint (rank 0); all ranks meet at a barrier so none runs ahead of the file."""
    if trainer.info.is_main:
        tensors, meta = checkpoint_payload(trainer)
        sidecar = {"position": meta["position"], "best": meta["best"], "recipe": trainer.recipe.name,
                   "code_length": trainer.code_length, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        save_checkpoint(trainer.dir / CHECKPOINT, tensors, meta, sidecar)
    ddp.barrier(trainer.info)


def restore_trainer(trainer, path: Path) -> None:
    """Load ``path`` into ``trainer`` (model, losses, protocol, optimiser, RNG, position, selection, log)."""
    from hashkit.training.selection import Best

    tensors, meta = load_checkpoint(path)
    if meta.get("code_length") != trainer.code_length:
        raise CheckpointError(f"{path}: checkpoint is for code length {meta.get('code_length')}, "
                              f"not {trainer.code_length}")
    if meta.get("num_train") != len(trainer.train_split):
        raise CheckpointError(f"{path}: checkpoint was trained on {meta.get('num_train')} training items, "
                              f"the dataset now has {len(trainer.train_split)}")
    load_module_state(trainer.model, split_prefix(tensors, "model."), what="model state", path=path)
    load_module_state(trainer.losses, split_prefix(tensors, "losses."), what="loss state", path=path)
    trainer.protocol.load_state_dict({k: v.to(trainer.device) for k, v in split_prefix(tensors, "protocol.").items()})
    try:
        trainer.optimizer.load_state_dict(unflatten_optimizer_state(tensors, meta["optimizer"]))
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: optimiser state does not match the recipe's optimiser ({exc})") from None
    if trainer.scaler.is_enabled() and meta.get("scaler"):
        trainer.scaler.load_state_dict(meta["scaler"])
    restore_rng(tensors, meta["rng"])
    trainer.position = Position(**meta["position"])
    trainer.selection.best = Best(**meta["best"])
    trainer.order = tensors.get("trainer.order")
    trainer.log.truncate_to(int(meta.get("log_lines", 0)))
