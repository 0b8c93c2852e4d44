"""``dpn``: DPN, deep polarized network (Fan, Ng, Ju, Zhang, Chan, IJCAI 2020), as DeepHash-pytorch trains it.

Each class c has a target code ``t_c ∈ {±1}^L`` with exactly ``⌊pL⌋`` entries −1 (random positions, drawn
once from ``seed``; buffer ``targets``). A sample's target is its class's code (single-label) or, for
multi-hot labels, ``sign(Σ_{c∈y} t_c)`` with zeros taken from a fixed random ±1 vector (buffer
``multi_label_fill``; the CSQ rule). With ``u`` the raw output and margin ``m``::

    loss = mean_{i,k} max(m − u_ik t_ik, 0)

m = 1, p = 0.5. The reference decides single/multi-label by dataset name (argmax of the labels except on
nuswide_21 / nuswide_21_m / coco); here ``multi_label = "sum"`` (default) uses the sum rule, which equals the
argmax rule on one-hot labels, and ``"argmax"`` reproduces the reference on the multi-label datasets it
treats as single-label. ``update_targets = true`` is the reference's "-A" variant: a memory bank of the raw
outputs (``LossInputs.indices``, sized ``BuildContext.num_train``) and, at the start of every epoch after the
first (= after each epoch in the reference), ``U ← 1[|U| > m]·sign(U)`` (the bank is overwritten with its
ternary form) and ``t_c ← sign(Σ_i Y_ic U_i)``. The "-T" variant (ternary ``u`` in the loss) has zero
gradient and is not offered. Part: ``hinge``.
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
from torch import Tensor

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, EpochStart, Loss, LossInputs, LossResult
from hashkit_plugins.losses._batch_input import RawInputConfig, code_and_class_sizes, read_batch
from hashkit_plugins.losses._memory_bank import BankConfig, MemoryBank


@attrs.frozen
class DPNConfig(RawInputConfig):
    #: polarization margin m
    margin: float = attrs.field(default=1.0, validator=attrs.validators.gt(0.0))
    #: fraction p of -1 entries in each class target
    p: float = attrs.field(default=0.5, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)])
    #: target of a multi-hot label: "sum" (sign of the summed class targets) or "argmax" (first label)
    multi_label: Literal["sum", "argmax"] = "sum"
    #: the "-A" variant: re-derive the targets from a memory bank of outputs before every epoch after the first
    update_targets: bool = False
    #: seed of the random targets and of the multi-label fill vector
    seed: int = 0


def polarized_targets(num_classes: int, length: int, p: float, generator: torch.Generator) -> Tensor:
    """``(C, L)`` ±1 codes with exactly ``⌊pL⌋`` entries −1 per row at random positions."""
    ranks = torch.rand(num_classes, length, generator=generator).argsort(dim=1).argsort(dim=1)
    return torch.where(ranks < int(length * p), -1.0, 1.0).to(torch.get_default_dtype())


def label_targets(labels: Tensor, targets: Tensor, fill: Tensor, rule: str) -> Tensor:
    """Per-sample targets ``(b, L)``: the class code (``"argmax"``) or ``sign(y T)`` with zeros from ``fill``."""
    if rule == "argmax":
        return targets[labels.argmax(dim=1)]
    summed = labels @ targets
    return torch.where(summed == 0, fill.expand_as(summed), torch.sign(summed))


class DPN(Loss):
    def __init__(self, cfg: DPNConfig, ctx: BuildContext):
        super().__init__()
        self.cfg = cfg
        self.requires = (cfg.input, "labels", *(("indices",) if cfg.update_targets else ()))
        length, classes = code_and_class_sizes(ctx, "dpn")
        g = torch.Generator().manual_seed(cfg.seed)
        self.register_buffer("targets", polarized_targets(classes, length, cfg.p, g))
        fill = torch.randint(0, 2, (length,), generator=g).to(torch.get_default_dtype()) * 2 - 1
        self.register_buffer("multi_label_fill", fill)
        self.bank = None
        if cfg.update_targets:
            if not ctx.num_train:
                raise ContractError("loss 'dpn': update_targets keeps a memory bank and needs BuildContext.num_train")
            self.bank = MemoryBank(BankConfig(), ctx.num_train, length, classes)

    @torch.no_grad()
    def begin_epoch(self, at: EpochStart) -> None:
        if self.bank is None or at.epoch == 0:
            return
        codes = self.bank.codes
        codes.copy_((codes.abs() > self.cfg.margin).to(codes.dtype) * torch.sign(codes))
        self.targets.copy_(torch.sign(self.bank.labels.t() @ codes).to(self.targets.dtype))

    def forward(self, inputs: LossInputs) -> LossResult:
        u, y = read_batch(inputs, self.cfg.input, "dpn")
        if self.bank is not None:
            self.bank.write(inputs.indices.long(), u, y)
        t = label_targets(y, self.targets.to(u.dtype), self.multi_label_fill.to(u.dtype), self.cfg.multi_label)
        hinge = (self.cfg.margin - u * t).clamp(min=0).mean()
        return LossResult(value=hinge, parts={"hinge": hinge})


def build_dpn(cfg: DPNConfig, ctx: BuildContext) -> DPN:
    """DPN: hinge towards random polarized class targets (optionally re-derived from a bank each epoch)."""
    return DPN(cfg, ctx)


def components(register):
    register("loss", "dpn", build_dpn, config=DPNConfig)
