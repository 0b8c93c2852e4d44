"""``bit_decorrelation``: decorrelated bits, ``U (B, L)`` relaxed codes.

- ``form = "frobenius"`` (default): ``‖(1/B)·UᵀU - I‖_F²``;
- ``form = "a2net"``: A2-Net's ``mean_kl((UᵀU - B·I)_kl²) / (B·L)`` (MSE over the L×L entries).
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch

from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit_plugins.losses._code_input import CodeInput, code_tensor


@attrs.frozen
class BitDecorrelationConfig:
    form: Literal["frobenius", "a2net"] = "frobenius"
    #: which model output the loss reads
    input: CodeInput = "codes"


class BitDecorrelation(Loss):
    def __init__(self, cfg: BitDecorrelationConfig):
        super().__init__()
        self.cfg = cfg
        self.requires = (cfg.input,)

    def forward(self, inputs: LossInputs) -> LossResult:
        u = code_tensor(inputs, self.cfg.input, "bit_decorrelation")
        b, length = u.shape
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
