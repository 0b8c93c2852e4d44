"""``quantization``: pull relaxed codes towards ±1.

- ``l2``: ``mean_{i,k} (|u_ik| - 1)^2`` (GDF-Net code, CSQ, DCH TF);
- ``sign_gap``: ``mean_i ||u_i - sign(u_i)||^2`` (DPSH, DTSH; HHF uses the batch sum), ``sign`` detached
  (it has no gradient), ``sign(0) = +1``;
- ``log_cosh``: ``mean_{i,k} log cosh(|u_ik| - 1)`` (CSQ paper form).

Input: ``codes (B, L)`` (or ``logits`` with ``input = "logits"``).
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
import torch.nn.functional as F

from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit_plugins.losses._code_input import CodeInput, code_tensor


@attrs.frozen
class QuantizationConfig:
    form: Literal["l2", "sign_gap", "log_cosh"] = "l2"
    input: CodeInput = "codes"


class QuantizationLoss(Loss):
    def __init__(self, cfg: QuantizationConfig):
        super().__init__()
        self.cfg = cfg
        self.requires = (cfg.input,)

    def forward(self, inputs: LossInputs) -> LossResult:
        u = code_tensor(inputs, self.cfg.input, "quantization")
        if self.cfg.form == "l2":
            value = (u.abs() - 1).pow(2).mean()
        elif self.cfg.form == "sign_gap":
            value = (u - torch.where(u >= 0, 1.0, -1.0)).pow(2).sum(dim=1).mean()
        else:
            x = u.abs() - 1
            value = (x.abs() + F.softplus(-2 * x.abs()) - torch.log(torch.tensor(2.0))).mean()
        return LossResult(value=value)


def build_quantization(cfg: QuantizationConfig, ctx: BuildContext) -> QuantizationLoss:
    """Quantisation loss pulling relaxed codes to ±1 (L2, sign-gap or log-cosh form)."""
    return QuantizationLoss(cfg)


def components(register):
    register("loss", "quantization", build_quantization, config=QuantizationConfig)
