"""The training loop: code lengths -> rounds -> epochs -> batches, with checkpoints, resume, AMP and DDP.

For each code length (trained one after the other, each seeded from ``(seed, code length)`` alone)::

    protocol.setup(train labels)
    for round r:                         order = protocol.begin_round(r)   (stored in checkpoints)
        for epoch e in the round:        batches = epoch_batches(order, ..., generator(seed, L, r, e))
            for batch b:                 images with per-sample seeds from (seed, L, r, e, b, position)
                forward (autocast around the network only) -> losses in float32 -> backward
                grad clip -> optimiser step (lr from the schedule at this position) -> protocol.observe
                checkpoint every train.checkpoint_every steps
        protocol.end_round(); evaluation for model selection; checkpoint
    evaluation of the last (and selected) model -> report

Position counters ``(round, epoch, batch, step)`` in the checkpoint say where to continue; because every
random draw derives from the position (see :mod:`hashkit.training.seeding`), a resumed run ends with the
same weights and codes as an uninterrupted one. A NaN/inf loss raises :class:`~hashkit.errors.TrainingError`
before the optimiser step, naming the step and the loss parts; the last checkpoint on disk is untouched.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import attrs
import torch
from torch import Tensor, nn

from hashkit.errors import TrainingError
from hashkit.interfaces import EpochStart, LossInputs, RetrievalData, Split, TrainingProtocol
from hashkit.recipe.schema import Recipe
from hashkit.training import ddp
from hashkit.training.device import amp_dtype, forward_wrapper, grad_scaler, place_model
from hashkit.training.evaluate import embed_items
from hashkit.training.metrics_log import MetricsLog
from hashkit.training.optim import set_learning_rate
from hashkit.training.run_dir import length_dir
from hashkit.training.schedule import completed_units, lr_factor
from hashkit.training.seeding import batch_loader, derive_seed, generator, seeded_keys
from hashkit.training.selection import ModelSelection
from hashkit.training.trainer_checkpoint import CHECKPOINT, Position, restore_trainer, save_trainer


@attrs.frozen
class TrainingData:
    """The data of one code length: ``train`` is what the model trains on (under ``best_val`` its training
    split lacks the validation items, which form ``val``); ``full`` is the dataset as loaded (final report)."""

    train: RetrievalData
    full: RetrievalData
    val: Split | None = None


def _float_tensors(extras: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.float() if isinstance(v, Tensor) and v.is_floating_point() else v) for k, v in extras.items()}


def _fmt(value: float) -> str:
    return f"{value:.6g}"


class LengthTrainer:
    """Trains (or resumes) one code length of a recipe inside a run directory.

    It is given what it trains: the built ``model`` (on its device), ``losses``, ``protocol`` (set up), the
    ``data`` and the ``optimizer``; :func:`train_length` assembles them from the recipe. The loop lives here;
    checkpoints are :mod:`~hashkit.training.trainer_checkpoint`, round evaluation, model selection and the
    final report :mod:`~hashkit.training.selection`, device and precision set-up :mod:`~hashkit.training.device`.
    """

    def __init__(self, recipe: Recipe, code_length: int | None, *, model: nn.Module, losses: nn.Module,
                 protocol: TrainingProtocol, data: TrainingData, optimizer: torch.optim.Optimizer, run_dir: Path,
                 device: torch.device, info: ddp.DistInfo, resume: bool, warnings: tuple[str, ...] = ()):
        tr = recipe.train
        self.recipe, self.code_length, self.device, self.info = recipe, code_length, device, info
        self.model, self.losses, self.protocol, self.data, self.optimizer = model, losses, protocol, data, optimizer
        self.dir = length_dir(run_dir, code_length)
        self.train_split = data.train.split("train")
        self.train_labels = self.train_split.targets.float()
        self.loss_params = [p for p in losses.parameters() if p.requires_grad]
        self.amp_dtype = amp_dtype(tr)
        self.scaler = grad_scaler(tr, device)
        self.forward_model = forward_wrapper(model, tr, info, device)
        self.warnings = tuple(warnings)

        self.position = Position()
        self.selection = ModelSelection()
        self.order: Tensor | None = None
        self.log = MetricsLog(self.dir / "metrics.jsonl", tensorboard=tr.tensorboard, enabled=info.is_main)
        if resume and (self.dir / CHECKPOINT).is_file():
            restore_trainer(self, self.dir / CHECKPOINT)
        elif info.is_main:
            self.dir.mkdir(parents=True, exist_ok=True)
            if self.log.path.exists():
                self.log.path.unlink()  # a kill before the first checkpoint: start the log again
            for message in self.warnings:  # logged once, at the fresh start (a resume keeps these lines)
                print(f"hashkit: warning: L={code_length}: {message}", file=sys.stderr)
                self.log.write("warning", {"message": message})
        from hashkit.data.image_dataset import ImageDataset
        from hashkit.data.transforms import build_transform

        self.images = ImageDataset(self.train_split, build_transform(recipe.data.train_transform),
                                   skip_bad_images=recipe.data.skip_bad_images)

    def save(self) -> None:
        """Write the checkpoint (rank 0), see :func:`~hashkit.training.trainer_checkpoint.save_trainer`."""
        save_trainer(self)

    # --------------------------------------------------------------------------------------------- training
    @property
    def num_rounds(self) -> int:
        return int(self.protocol.num_rounds)

    @property
    def epochs_per_round(self) -> int:
        return int(self.protocol.epochs_per_round)

    def _epoch_batches(self, r: int, e: int) -> list[Tensor]:
        from hashkit.data.samplers import epoch_batches

        d = self.recipe.data
        order = self.order
        return epoch_batches(order, self.train_labels[order], d.batch_size, d.sampler,
                             generator(self.recipe.seed, self.code_length, "epoch", r, e), d.drop_last)

    def _lr(self, r: int, e: int, steps_per_epoch: int) -> None:
        sched = self.recipe.schedule
        total = {"round": self.num_rounds, "epoch": self.num_rounds * self.epochs_per_round,
                 "step": self.num_rounds * self.epochs_per_round * max(steps_per_epoch, 1)}[sched.unit]
        t = completed_units(sched, round_index=r, epoch_index=e, epochs_per_round=self.epochs_per_round,
                            step=self.position.step)
        set_learning_rate(self.optimizer, lr_factor(sched, t, total, self.recipe.optimizer.lr))

    def train(self) -> None:
        from hashkit.progress import progress_bar

        tr = self.recipe.train
        pos = self.position
        show = tr.progress and self.info.is_main
        total_epochs = self.num_rounds * self.epochs_per_round
        label = f"L={self.code_length}" if self.code_length else "real"
        epochs_bar = progress_bar(total=total_epochs, initial=pos.round * self.epochs_per_round + pos.epoch,
                                  desc=f"{label} epochs", unit="epoch", enabled=show)
        self.model.train()
        self.losses.train()
        try:
            while pos.round < self.num_rounds:
                r = pos.round
                if self.order is None:
                    self._refresh_protocol_embeddings(r)
                    self.order = torch.as_tensor(
                        self.protocol.begin_round(r, generator(self.recipe.seed, self.code_length, "round", r)),
                        dtype=torch.int64).cpu()
                while pos.epoch < self.epochs_per_round:
                    self._run_epoch(r, pos.epoch, show)
                    pos.epoch += 1
                    pos.batch = 0
                    epochs_bar.update(1)
                self.protocol.end_round()
                if self.info.enabled:
                    state = self.protocol.state_dict()
                    if state:
                        self.protocol.load_state_dict(ddp.broadcast_state(state, self.info))
                pos.round += 1
                pos.epoch = 0
                self.order = None
                self.log.write("round", {"step": pos.step, "round": r, **self._protocol_stats()})
                self._round_evaluation(r)
                pos.finished = pos.round >= self.num_rounds
                self.save()
        finally:
            epochs_bar.close()
            self.log.close()

    def _refresh_protocol_embeddings(self, r: int) -> None:
        """Give the protocol current-model embeddings of the items it asks for (e.g. hard-negative mining)."""
        wanted = self.protocol.embedding_request(r, generator(self.recipe.seed, self.code_length, "refresh", r))
        if wanted is None or len(wanted) == 0:
            return
        wanted = torch.as_tensor(wanted, dtype=torch.int64).cpu()
        self.protocol.refresh_embeddings(wanted, embed_items(self.model, self.train_split, wanted, self.recipe,
                                                             self.device))

    def _protocol_stats(self) -> dict[str, Any]:
        codes = self.protocol.database_codes()
        if codes is None:
            return {}
        signs = torch.sign(codes.float())
        return {"db_bit_balance": float(signs.mean(dim=0).abs().mean()),
                "db_distinct_codes": int(torch.unique(signs, dim=0).shape[0])}

    def _run_epoch(self, r: int, e: int, show: bool) -> None:
        from hashkit.progress import progress_bar, set_postfix

        tr = self.recipe.train
        pos = self.position
        batches = self._epoch_batches(r, e)
        start = pos.batch
        if start == 0:  # not again when resuming mid-epoch: the losses' state came back with the checkpoint
            self.losses.begin_epoch(EpochStart.at(r, e, self.epochs_per_round, self.num_rounds))
        plans = []
        for b in range(start, len(batches)):
            batch = batches[b]
            local, weight = ddp.shard(batch, self.info)
            offset = sum(len(c) for c in torch.tensor_split(batch, self.info.world_size)[: self.info.rank]) \
                if self.info.enabled else 0
            seed = derive_seed(self.recipe.seed, self.code_length, "batch", r, e, b)
            plans.append((b, batch, local, weight, seed, offset))
        loader = batch_loader(self.images, [seeded_keys(p[2], p[4], p[5]) for p in plans],
                              self.recipe.data.num_workers, pin=self.device.type == "cuda")
        bar = progress_bar(total=len(batches), initial=start, desc=f"round {r + 1}/{self.num_rounds} epoch "
                           f"{e + 1}/{self.epochs_per_round}", unit="step", leave=False, enabled=show)
        try:
            for (b, batch, local, weight, seed, _), (images, targets, indices) in zip(plans, loader):
                self._lr(r, e, len(batches))
                loss, parts = self._step(images, targets, indices, batch, weight, seed, r, e, b)
                pos.batch = b + 1
                pos.step += 1
                bar.update(1)
                if show:
                    set_postfix(bar, loss=_fmt(loss))
                if pos.step % tr.log_every == 0 or pos.step == 1:
                    self.log.write("step", {"step": pos.step, "round": r, "epoch": e, "batch": b,
                                            "lr": self.optimizer.param_groups[0]["lr"], "loss": loss, **parts})
                if tr.checkpoint_every and pos.step % tr.checkpoint_every == 0:
                    self.save()
        finally:
            bar.close()

    def _step(self, images: Tensor, targets: Tensor, indices: Tensor, batch: Tensor, weight: float, seed: int,
              r: int, e: int, b: int) -> tuple[float, dict[str, float]]:
        tr = self.recipe.train
        dev = self.device
        images = images.to(dev, non_blocking=True)
        if tr.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        targets = targets.to(dev, non_blocking=True).float()
        indices = indices.to(dev, dtype=torch.int64)
        torch.manual_seed(derive_seed(seed, "forward", self.info.rank))  # dropout and other in-model draws
        with torch.autocast(dev.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
            out = self.forward_model(images)
        inputs = LossInputs(
            codes=out.codes.float() if out.codes is not None else None,
            logits=out.logits.float() if out.logits is not None else None,
            descriptor=out.descriptor.float(),
            class_logits=out.class_logits.float() if out.class_logits is not None else None,
            labels=targets, indices=indices, extras=_float_tensors(out.extras),
            protocol=self.protocol.batch_state(indices),
        )
        result = self.losses(inputs)
        names = ["loss", *result.parts]
        local_share = (indices.numel() / batch.numel()) if self.info.enabled and weight > 0 else float(weight > 0)
        values = torch.stack([result.value.detach().float(), *(p.float().reshape(()) for p in result.parts.values())])
        values = ddp.all_reduce_sum(values * local_share, self.info).cpu().tolist()
        logged = dict(zip(names, values))
        if not all(math.isfinite(v) for v in values):
            parts = ", ".join(f"{k}={_fmt(v)}" for k, v in logged.items())
            last = self.dir / CHECKPOINT
            kept = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint was written yet"
            raise TrainingError(f"non-finite loss at step {self.position.step + 1} (round {r + 1}, epoch {e + 1}, "
                                f"batch {b + 1}): {parts}; training stopped, {kept}")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(result.value * weight).backward()
        ddp.average_gradients(self.loss_params, self.info)
        if tr.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, tr.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        codes = out.codes.detach().float() if out.codes is not None else out.descriptor.detach().float()
        if self.info.enabled:
            codes = ddp.gather_codes(codes if weight > 0 else codes[:0], batch, self.info)
            self.protocol.observe(batch.to(dev), codes)
        else:
            self.protocol.observe(indices, codes)
        return logged.pop("loss"), logged

    def _round_evaluation(self, r: int) -> None:
        self.selection.evaluate_round(self, r)

    def final_report(self) -> dict[str, Any]:
        return self.selection.final_report(self)


def train_length(recipe: Recipe, data: RetrievalData, code_length: int | None, run_dir: Path,
                 device: torch.device, info: ddp.DistInfo, *, resume: bool) -> dict[str, Any] | None:
    """Build what one code length trains (model, losses, protocol, optimiser), train it and report on it;
    the rank-0 report (``None`` on other ranks)."""
    from hashkit.assemble import build
    from hashkit.training.optim import build_optimizer, freeze
    from hashkit.training.seeding import seed_globals
    from hashkit.training.start_checks import recording, schedule_warnings
    from hashkit.training.validation import carve_validation

    started = time.time()
    tr = recipe.train
    train_data, val = (carve_validation(data, tr.val_fraction, recipe.seed) if tr.selection == "best_val"
                       else (data, None))
    seed_globals(derive_seed(recipe.seed, code_length, "init"))
    with recording() as warnings:  # values accepted but clamped (hashkit.training.start_checks)
        built = build(recipe, code_length, data=train_data)
        model = place_model(built.model, tr, device)
        losses = built.losses.to(device)
        protocol = built.protocol
        protocol.setup(train_data.split("train").targets.float(), generator(recipe.seed, code_length, "setup"))
    protocol = protocol.to(device) or protocol
    warnings += schedule_warnings(recipe, protocol, len(train_data.split("train")))
    freeze(model, tr.freeze)
    named = [*model.named_parameters(), *(("losses." + n, p) for n, p in losses.named_parameters())]
    optimizer = build_optimizer(named, recipe.optimizer)
    trainer = LengthTrainer(recipe, code_length, model=model, losses=losses, protocol=protocol,
                            data=TrainingData(train=train_data, full=data, val=val), optimizer=optimizer,
                            run_dir=run_dir, device=device, info=info, resume=resume, warnings=tuple(warnings))
    if not trainer.position.finished:
        trainer.train()
    report = None
    if info.is_main:
        report = trainer.final_report()
        report["train_time_s"] = round(time.time() - started, 1)
    ddp.barrier(info)
    return report


def write_report(run_dir: Path, report: dict[str, Any]) -> str:
    from hashkit.atomic_io import atomic_write_text
    from hashkit.training.report_text import report_table

    atomic_write_text(Path(run_dir) / "report.json", json.dumps(report, indent=2, sort_keys=True) + "\n")
    text = report_table(report)
    atomic_write_text(Path(run_dir) / "report.txt", text + "\n")
    return text
