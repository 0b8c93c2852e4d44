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

import copy
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import attrs
import torch
from torch import Tensor

from hashkit.errors import CheckpointError, RecipeError, TrainingError
from hashkit.interfaces import LossInputs, RetrievalData, Split
from hashkit.recipe.schema import Recipe
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
from hashkit.training.evaluate import EvalResult, embed_items, evaluate_data, evaluate_model, headline
from hashkit.training.metrics_log import MetricsLog
from hashkit.training.optim import build_optimizer, freeze, set_learning_rate
from hashkit.training.run_dir import length_dir
from hashkit.training.schedule import completed_units, lr_factor
from hashkit.training.seeding import batch_loader, derive_seed, generator, seed_globals, seeded_keys
from hashkit.training.validation import carve_validation

CHECKPOINT = "checkpoint.safetensors"
SELECTED = "selected.safetensors"
CODES = "codes.safetensors"
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@attrs.define
class Position:
    """Where training stands: completed rounds, epochs of the current round, batches of the current epoch."""

    round: int = 0
    epoch: int = 0
    batch: int = 0
    step: int = 0
    finished: bool = False


@attrs.define
class Best:
    score: float | None = None
    round: int | None = None


def pick_device(preference: str, info: ddp.DistInfo) -> torch.device:
    """``auto`` = CUDA when present (this rank's local GPU under DDP), else CPU."""
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(preference)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RecipeError("train.device asks for CUDA but no GPU is available", key="train.device")
        if device.index is None:
            device = torch.device("cuda", info.local_rank if info.enabled else torch.cuda.current_device())
    return device


def configure_determinism(enabled: bool) -> None:
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True


def _float_tensors(extras: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.float() if isinstance(v, Tensor) and v.is_floating_point() else v) for k, v in extras.items()}


def _bar_interval() -> float:
    """tqdm refresh interval: live on a terminal, every 30 s into a log file (no carriage-return spam)."""
    return 0.5 if sys.stderr.isatty() else 30.0


def _fmt(value: float) -> str:
    return f"{value:.6g}"


class LengthTrainer:
    """Trains (or resumes) one code length of a recipe inside a run directory."""

    def __init__(self, recipe: Recipe, data: RetrievalData, code_length: int | None, run_dir: Path,
                 device: torch.device, info: ddp.DistInfo, *, resume: bool):
        from hashkit.assemble import build

        self.recipe, self.code_length, self.device, self.info = recipe, code_length, device, info
        self.dir = length_dir(run_dir, code_length)
        self.full_data = data
        self.val: Split | None = None
        if recipe.train.selection == "best_val":
            data, self.val = carve_validation(data, recipe.train.val_fraction, recipe.seed)
        self.data = data
        self.train_split = data.split("train")
        self.train_labels = self.train_split.targets.float()
        tr = recipe.train

        seed_globals(derive_seed(recipe.seed, code_length, "init"))
        built = build(recipe, code_length, data=data)
        self.model = built.model.to(device)
        if tr.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.losses = built.losses.to(device)
        self.protocol = built.protocol
        self.protocol.setup(self.train_labels, generator(recipe.seed, code_length, "setup"))
        self.protocol = self.protocol.to(device) or self.protocol
        self.frozen = freeze(self.model, tr.freeze)
        self.optimizer = build_optimizer(
            [*self.model.named_parameters(), *(("losses." + n, p) for n, p in self.losses.named_parameters())],
            recipe.optimizer)
        self.loss_params = [p for p in self.losses.parameters() if p.requires_grad]
        self.amp_dtype = AMP_DTYPES.get(tr.amp)
        self.scaler = torch.amp.GradScaler(device.type, enabled=tr.amp == "fp16")
        self.wrapped = ddp.wrap_model(self.model, info, device)
        self.forward_model = torch.compile(self.wrapped) if tr.compile else self.wrapped

        self.position = Position()
        self.best = Best()
        self.order: Tensor | None = None
        self.log = MetricsLog(self.dir / "metrics.jsonl", tensorboard=tr.tensorboard, enabled=info.is_main)
        if resume and (self.dir / CHECKPOINT).is_file():
            self._restore(self.dir / CHECKPOINT)
        elif info.is_main:
            self.dir.mkdir(parents=True, exist_ok=True)
            if self.log.path.exists():
                self.log.path.unlink()  # a kill before the first checkpoint: start the log again
        from hashkit.data.image_dataset import ImageDataset
        from hashkit.data.transforms import build_transform

        self.images = ImageDataset(self.train_split, build_transform(recipe.data.train_transform),
                                   skip_bad_images=recipe.data.skip_bad_images)

    # ------------------------------------------------------------------------------------------ checkpoints
    def _checkpoint_tensors(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        tensors = {**with_prefix(self.model.state_dict(), "model."),
                   **with_prefix(self.losses.state_dict(), "losses."),
                   **with_prefix(self.protocol.state_dict(), "protocol.")}
        optim_tensors, optim_meta = flatten_optimizer_state(self.optimizer.state_dict())
        rng_tensors, rng_meta = capture_rng()
        tensors.update(optim_tensors)
        tensors.update(rng_tensors)
        if self.order is not None:
            tensors["trainer.order"] = self.order
        meta = {
            "position": attrs.asdict(self.position),
            "best": attrs.asdict(self.best),
            "optimizer": optim_meta,
            "rng": rng_meta,
            "scaler": {k: (float(v) if isinstance(v, (int, float)) else v)
                       for k, v in self.scaler.state_dict().items()},
            "recipe": self.recipe.name,
            "code_length": self.code_length,
            "world_size": self.info.world_size,
            "num_train": len(self.train_split),
            "log_lines": self.log.lines,
        }
        return tensors, meta

    def save(self) -> None:
        """Write the checkpoint (rank 0); all ranks meet at a barrier so none runs ahead of the file."""
        if self.info.is_main:
            tensors, meta = self._checkpoint_tensors()
            sidecar = {"position": meta["position"], "best": meta["best"], "recipe": self.recipe.name,
                       "code_length": self.code_length, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
            save_checkpoint(self.dir / CHECKPOINT, tensors, meta, sidecar)
        ddp.barrier(self.info)

    def _restore(self, path: Path) -> None:
        tensors, meta = load_checkpoint(path)
        if meta.get("code_length") != self.code_length:
            raise CheckpointError(f"{path}: checkpoint is for code length {meta.get('code_length')}, "
                                  f"not {self.code_length}")
        if meta.get("num_train") != len(self.train_split):
            raise CheckpointError(f"{path}: checkpoint was trained on {meta.get('num_train')} training items, "
                                  f"the dataset now has {len(self.train_split)}")
        load_module_state(self.model, split_prefix(tensors, "model."), what="model state", path=path)
        load_module_state(self.losses, split_prefix(tensors, "losses."), what="loss state", path=path)
        self.protocol.load_state_dict({k: v.to(self.device) for k, v in split_prefix(tensors, "protocol.").items()})
        try:
            self.optimizer.load_state_dict(unflatten_optimizer_state(tensors, meta["optimizer"]))
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"{path}: optimiser state does not match the recipe's optimiser ({exc})") from None
        if self.scaler.is_enabled() and meta.get("scaler"):
            self.scaler.load_state_dict(meta["scaler"])
        restore_rng(tensors, meta["rng"])
        self.position = Position(**meta["position"])
        self.best = Best(**meta["best"])
        self.order = tensors.get("trainer.order")
        self.log.truncate_to(int(meta.get("log_lines", 0)))

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
        from tqdm import tqdm

        tr = self.recipe.train
        pos = self.position
        show = tr.progress and self.info.is_main
        total_epochs = self.num_rounds * self.epochs_per_round
        label = f"L={self.code_length}" if self.code_length else "real"
        epochs_bar = tqdm(total=total_epochs, initial=pos.round * self.epochs_per_round + pos.epoch,
                          desc=f"{label} epochs", unit="epoch", disable=not show, file=sys.stderr, dynamic_ncols=True,
                          mininterval=_bar_interval())
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
        from tqdm import tqdm

        tr = self.recipe.train
        pos = self.position
        batches = self._epoch_batches(r, e)
        start = pos.batch
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
        bar = tqdm(total=len(batches), initial=start, desc=f"round {r + 1}/{self.num_rounds} epoch "
                   f"{e + 1}/{self.epochs_per_round}", unit="step", leave=False, disable=not show,
                   file=sys.stderr, dynamic_ncols=True, mininterval=_bar_interval())
        try:
            for (b, batch, local, weight, seed, _), (images, targets, indices) in zip(plans, loader):
                self._lr(r, e, len(batches))
                loss, parts = self._step(images, targets, indices, batch, weight, seed, r, e, b)
                pos.batch = b + 1
                pos.step += 1
                bar.update(1)
                if show:
                    bar.set_postfix(loss=_fmt(loss))
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

    # ------------------------------------------------------------------------------------------- evaluation
    @property
    def provided_kind(self) -> str:
        """What the protocol's database codes are: ``"learned"`` (ADSH's B) or ``"label"`` (label-derived)."""
        return getattr(self.protocol, "database", "encoded")

    def protocol_codes(self) -> Tensor | None:
        codes = self.protocol.database_codes()
        return None if codes is None else codes.detach().float().cpu()

    def learned_database(self) -> tuple[Tensor, Tensor] | None:
        codes = self.protocol_codes()
        if codes is None:
            return None
        return codes, self.train_labels.cpu()

    def _needs_round_eval(self, r: int) -> bool:
        tr = self.recipe.train
        last = r + 1 == self.num_rounds
        if tr.eval_rounds:
            return last or (r + 1) in tr.eval_rounds
        if tr.selection != "last":
            return tr.eval_every == 0 or (r + 1) % tr.eval_every == 0 or last
        return tr.eval_every > 0 and ((r + 1) % tr.eval_every == 0 or last)

    def _round_evaluation(self, r: int) -> None:
        if not self._needs_round_eval(r):
            return
        tr = self.recipe.train
        if self.info.is_main:
            if tr.selection == "best_val":
                split, query, database = "val", self.val, self.train_split
            else:
                split, query, database = "query", self.data.split("query"), self.data.split("database")
            # only the kind that selects is scored (SEMICON: the learned database; no database encoding per round)
            res = evaluate_model(self.model, self.recipe, query=query, database=database,
                                 learned=self.learned_database(), provided_kind=self.provided_kind, device=self.device,
                                 progress=False, kinds=tuple(self.recipe.eval.database[:1]))
            score = headline(res.scores, self.recipe)
            self.log.write("eval", {"step": self.position.step, "round": r, "split": split, "score": score,
                                    **{f"{k}.{m}": v for k, s in res.scores.items() for m, v in s.items()
                                       if isinstance(v, (int, float))}})
            if tr.selection != "last" and (self.best.score is None or score > self.best.score):
                self.best = Best(score=score, round=r + 1)
                tensors = with_prefix(self.model.state_dict(), "model.")
                learned = self.learned_database()
                if learned is not None:
                    tensors["database_codes"] = learned[0]
                save_checkpoint(self.dir / SELECTED, tensors, {"round": r + 1, "score": score, "split": split,
                                                                "code_length": self.code_length})
        ddp.barrier(self.info)

    def final_report(self) -> dict[str, Any]:
        """Evaluate the last model (and the selected one) on the query set (the four open-set protocols for a
        seen/unseen split); write the codes (rank 0)."""
        recipe = self.recipe

        def score(model, codes) -> EvalResult:
            return evaluate_data(model, recipe, self.full_data, codes=codes, provided_kind=self.provided_kind,
                                 train_data=self.data, device=self.device, progress=recipe.train.progress)

        last = score(self.model, self.protocol_codes())
        report: dict[str, Any] = {
            "code_length": self.code_length, "rounds": self.num_rounds, "steps": self.position.step,
            "selection": recipe.train.selection, "last": last.scores,
        }
        codes = {f"last.{k}": v for k, v in last.codes.items()}
        selected: EvalResult = last
        if recipe.train.selection != "last" and self.best.round is not None:
            tensors, _ = load_checkpoint(self.dir / SELECTED)
            model = copy.deepcopy(self.model)
            load_module_state(model, split_prefix(tensors, "model."), what="selected model", path=self.dir / SELECTED)
            selected = score(model, tensors.get("database_codes"))
            codes.update({f"selected.{k}": v for k, v in selected.codes.items()})
            report["selected_round"] = self.best.round
            report["selection_score"] = self.best.score
        else:
            report["selected_round"] = self.num_rounds
        report["selected"] = selected.scores
        if last.protocols:
            report["protocols"] = {"last": last.protocols, "selected": selected.protocols}
        save_checkpoint(self.dir / CODES, codes, {"code_length": self.code_length, "selection": recipe.train.selection})
        return report


def train_length(recipe: Recipe, data: RetrievalData, code_length: int | None, run_dir: Path,
                 device: torch.device, info: ddp.DistInfo, *, resume: bool) -> dict[str, Any] | None:
    """Train one code length; the rank-0 report for it (``None`` on other ranks)."""
    started = time.time()
    trainer = LengthTrainer(recipe, data, code_length, run_dir, device, info, resume=resume)
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
