"""``bit_decorrelation``: decorrelated bits, ``U (B, L)`` relaxed codes.

- ``form = "frobenius"`` (default): ``‖(1/B)·UᵀU - I‖_F²``;
- ``form = "a2net"``: A2-Net's ``mean_kl((UᵀU - B·I)_kl²) / (B·L)`` (MSE over the L×L entries).

``batch_size = b0 > 0`` uses b0 for B in the ``a2net`` form instead of the actual batch size (aassxun/DSH_Analysis
@ 44271bc uses the configured batch size, also for a smaller last batch); ``from_round`` switches the term on at
a 0-based round (A2-Net: ``max_iter // 2``), the round coming from ``begin_epoch``.
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch

from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit_plugins.losses._code_input import CodeInput, code_tensor
from hashkit_plugins.losses._schedule import FromRound, zero_like


@attrs.frozen
class BitDecorrelationConfig:
    form: Literal["frobenius", "a2net"] = "frobenius"
    #: which model output the loss reads
    input: CodeInput = "codes"
    #: B of the a2net form: the actual batch size (0) or this configured one (the reference's)
    batch_size: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    #: 0-based round from which the term is on (0 = always)
    from_round: int = attrs.field(default=0, validator=attrs.validators.ge(0))


class BitDecorrelation(FromRound, Loss):
    def __init__(self, cfg: BitDecorrelationConfig):
        super().__init__()
        self.cfg = cfg
        self.requires = (cfg.input,)
        self.schedule_from_round(cfg.from_round)

    def forward(self, inputs: LossInputs) -> LossResult:
        if not self.is_active():
            return LossResult(value=zero_like(inputs))
        u = code_tensor(inputs, self.cfg.input, "bit_decorrelation")
        b, length = u.shape
        if self.cfg.form == "a2net" and self.cfg.batch_size:
            b = self.cfg.batch_size
        eye = torch.eye(length, dtype=u.dtype, device=u.device)
        gram = u.t() @ u
        if self.cfg.form == "frobenius":
            value = (gram / b - eye).pow(2).sum()
        else:
            value = (gram - b * eye).pow(2).mean() / (b * length)
        return LossResult(value=value)


def build_bit_decorrelation(cfg: BitDecorrelationConfig, ctx: BuildContext) -> BitDecorrelation:
    """Bit decorrelation: the batch correlation of the relaxed bits pushed towards the identity."""
    return BitDecorrelation(cfg)


def components(register):
    register("loss", "bit_decorrelation", build_bit_decorrelation, config=BitDecorrelationConfig)
