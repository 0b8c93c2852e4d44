"""``bit_balance``: differentiable bit-balance loss on relaxed codes ``U (B, L)``.

- ``form = "per_bit"`` (default): every bit is +1 for half the batch, ``(1/L)·Σ_k (mean_i u_ik)²``;
- ``form = "per_code"``: every code has half its bits at +1, ``(1/B)·Σ_i (mean_k u_ik)²``.

Both are computed on the relaxed codes (tanh outputs by default), never on ``sign(u)``, so they have a
gradient (GDF-Net's author code balances ``sign(h)``, which has none; see docs/methods/gdfnet.md).
"""

from __future__ import annotations

from typing import Literal

import attrs

from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit_plugins.losses._code_input import CodeInput, code_tensor


@attrs.frozen
class BitBalanceConfig:
    #: "per_bit": mean over the batch of each bit -> 0; "per_code": mean over the bits of each code -> 0
    form: Literal["per_bit", "per_code"] = "per_bit"
    #: which model output the loss reads
    input: CodeInput = "codes"


class BitBalance(Loss):
    def __init__(self, cfg: BitBalanceConfig):
        super().__init__()
        self.cfg = cfg
        self.requires = (cfg.input,)

    def forward(self, inputs: LossInputs) -> LossResult:
        u = code_tensor(inputs, self.cfg.input, "bit_balance")
        dim = 0 if self.cfg.form == "per_bit" else 1
        return LossResult(value=u.mean(dim=dim).pow(2).mean())


def build_bit_balance(cfg: BitBalanceConfig, ctx: BuildContext) -> BitBalance:
    """Differentiable bit balance, per bit (over the batch) or per code (over the bits)."""
    return BitBalance(cfg)


def components(register):
    register("loss", "bit_balance", build_bit_balance, config=BitBalanceConfig)
