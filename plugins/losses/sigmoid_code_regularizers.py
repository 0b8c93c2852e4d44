"""``sigmoid_code_regularizers``: DPAH's regularisers of sigmoid codes ``h = sigmoid(u)`` and of ``u`` itself.

As aassxun/DSH_Analysis @ 44271bc ``DPAH.py`` computes them (``SupLoss1``'s second and third terms, ``KTLoss``),
for pre-activations ``u = logits (B, L)`` and ``h = sigmoid(u)``::

    balance = (1 / (2B))  Σ_i ( mean_k h_ik - ½ )²                   each code has half its bits on (SSDH form)
    push    = -(1 / (2BL)) Σ_ik ( h_ik - ½ )²                        push every bit away from ½
    range   = (1 / (4B)) [ Σ_{u_ik > t} (u_ik - p)² + Σ_{u_ik < -t} (u_ik + p)² ]

    loss = balance_weight · balance + push_weight · push + range_weight · range     (parts: the three terms)

with the reference's t = ``range_threshold`` = 10, p = ``range_pull`` = 2 and weights 1, 1, 0.01. The range
term is zero for |u| <= 10 and jumps to >= 64 / (4B) just outside: it pulls large pre-activations towards ±2,
not ±10 (a discontinuity kept by default); ``range_pull = 10`` makes it continuous (pull to the threshold).
"""

from __future__ import annotations

import attrs
import torch

from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult


@attrs.frozen
class SigmoidCodeRegularizersConfig:
    balance_weight: float = 1.0
    push_weight: float = 1.0
    range_weight: float = 0.01
    #: t: |u| beyond which the range penalty applies (DPAH: 10)
    range_threshold: float = attrs.field(default=10.0, validator=attrs.validators.ge(0.0))
    #: p: the value the penalty pulls large |u| towards (DPAH: 2; 10 = the threshold, continuous)
    range_pull: float = 2.0


class SigmoidCodeRegularizers(Loss):
    requires = ("logits",)

    def __init__(self, cfg: SigmoidCodeRegularizersConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, inputs: LossInputs) -> LossResult:
        cfg = self.cfg
        u = inputs.logits.float()
        b, bits = u.shape
        h = torch.sigmoid(u)
        balance = (h.mean(dim=1) - 0.5).pow(2).sum() / (2 * b)
        push = -(h - 0.5).pow(2).sum() / (2 * b * bits)
        high = torch.where(u > cfg.range_threshold, (u - cfg.range_pull).pow(2), torch.zeros_like(u))
        low = torch.where(u < -cfg.range_threshold, (u + cfg.range_pull).pow(2), torch.zeros_like(u))
        range_ = (high.sum() + low.sum()) / (4 * b)
        value = cfg.balance_weight * balance + cfg.push_weight * push + cfg.range_weight * range_
        return LossResult(value=value, parts={"balance": balance.detach(), "push": push.detach(),
                                              "range": range_.detach()})


def build_sigmoid_code_regularizers(cfg: SigmoidCodeRegularizersConfig, ctx: BuildContext) -> SigmoidCodeRegularizers:
    """DPAH's code-balance, push-from-½ and range penalties on sigmoid codes."""
    return SigmoidCodeRegularizers(cfg)


def components(register):
    register("loss", "sigmoid_code_regularizers", build_sigmoid_code_regularizers,
             config=SigmoidCodeRegularizersConfig)
