"""``cauchy_quantization``: DCH's Cauchy quantisation loss.

``loss = (1/b)·Σ_i log(1 + d(|u_i|, 1)/γ)`` with ``d(a, 1) = (L/2)(1 - cos(a, 1))`` and 1 the all-ones
vector. It depends only on the *direction* of ``|u_i|`` (it equalises the magnitudes of the bits) and is
therefore **scale-invariant**: ``loss(c·u) = loss(u)`` for c > 0. It does not push values towards ±1 on its
own, so pair it with a bounded output (``input = "codes"`` from a tanh head, the default) or an L2 term.
Input ``(B, L)``; default γ = 20 (DCH's value).
"""

from __future__ import annotations

import attrs
import torch

from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit_plugins.losses._cauchy import cauchy_distance
from hashkit_plugins.losses._code_input import CodeInput, code_tensor


@attrs.frozen
class CauchyQuantizationConfig:
    #: Cauchy scale γ (DCH public code: 20)
    gamma: float = attrs.field(default=20.0, validator=attrs.validators.gt(0.0))
    #: lower bound of ‖|u_i|‖·‖1‖ in the cosine
    norm_eps: float = attrs.field(default=1e-4, validator=attrs.validators.gt(0.0))
    #: clamp the cosine to <= cos_max (DeepHash-pytorch's DCH reuses its 0.99 clamp here); unset = no clamp
    cos_max: float | None = None
    #: which model output the loss reads ("codes": bounded, recommended)
    input: CodeInput = "codes"


class CauchyQuantization(Loss):
    def __init__(self, cfg: CauchyQuantizationConfig):
        super().__init__()
        self.cfg = cfg
        self.requires = (cfg.input,)

    def forward(self, inputs: LossInputs) -> LossResult:
        u = code_tensor(inputs, self.cfg.input, "cauchy_quantization")
        ones = torch.ones(1, u.shape[1], dtype=u.dtype, device=u.device)
        d = cauchy_distance(u.abs(), ones, cos_max=self.cfg.cos_max, norm_eps=self.cfg.norm_eps).squeeze(1)
        return LossResult(value=torch.log1p(d / self.cfg.gamma).mean())


def build_cauchy_quantization(cfg: CauchyQuantizationConfig, ctx: BuildContext) -> CauchyQuantization:
    """DCH Cauchy quantisation (scale-invariant: use it on bounded codes)."""
    return CauchyQuantization(cfg)


def components(register):
    register("loss", "cauchy_quantization", build_cauchy_quantization, config=CauchyQuantizationConfig)
