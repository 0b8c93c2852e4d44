"""``cauchy_cross_entropy``: DCH's class-balanced Cauchy cross-entropy on pairs of relaxed codes.

For the pairs (i, j) of a batch (diagonal excluded unless ``include_diagonal``), with
``d_ij = (L/2)(1 - cos(u_i, u_j))`` (cos clamped to ``<= cos_max``) and ``s_ij = 1`` for pairs sharing a label::

    loss = mean_ij  w_ij · [ s_ij·log(d_ij/γ) + log(1 + γ/d_ij) ]

``w_ij = |S|/|S1|`` for similar pairs and ``|S|/|S0|`` for dissimilar ones (``|S|`` pairs in all); when the
batch has only one kind of pair, ``w = 1`` (as the PyTorch port). Input ``codes`` (default) or ``logits``
``(B, L)``, labels ``(B, C)`` multi-hot. Defaults: γ = 20, cos_max = 0.99 (DCH's values).
"""

from __future__ import annotations

import attrs
import torch

from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit_plugins.losses._cauchy import cauchy_distance, similarity
from hashkit_plugins.losses._code_input import CodeInput, code_tensor


@attrs.frozen
class CauchyCrossEntropyConfig:
    #: Cauchy scale γ (DCH public code: 20)
    gamma: float = attrs.field(default=20.0, validator=attrs.validators.gt(0.0))
    #: cosine clamp keeping d_ij >= (L/2)(1 - cos_max) > 0
    cos_max: float = attrs.field(default=0.99, validator=[attrs.validators.gt(-1.0), attrs.validators.lt(1.0)])
    #: lower bound of ‖u_i‖‖u_j‖ in the cosine
    norm_eps: float = attrs.field(default=1e-4, validator=attrs.validators.gt(0.0))
    #: average over all b×b pairs (the PyTorch port) instead of the off-diagonal ones (hashkit default)
    include_diagonal: bool = False
    #: which model output the loss reads
    input: CodeInput = "codes"


class CauchyCrossEntropy(Loss):
    def __init__(self, cfg: CauchyCrossEntropyConfig):
        super().__init__()
        self.cfg = cfg
        self.requires = (cfg.input, "labels")

    def forward(self, inputs: LossInputs) -> LossResult:
        u = code_tensor(inputs, self.cfg.input, "cauchy_cross_entropy")
        b = u.shape[0]
        s = similarity(inputs.labels)
        d = cauchy_distance(u, u, cos_max=self.cfg.cos_max, norm_eps=self.cfg.norm_eps)
        keep = torch.ones(b, b, dtype=torch.bool, device=u.device)
        if not self.cfg.include_diagonal:
            keep &= ~torch.eye(b, dtype=torch.bool, device=u.device)
        s, d = s[keep], d[keep]
        if s.numel() == 0:
            return LossResult(value=u.sum() * 0.0)
        n_pos, n_neg = s.sum(), (1 - s).sum()
        if n_pos > 0 and n_neg > 0:
            w = s * (s.numel() / n_pos) + (1 - s) * (s.numel() / n_neg)
        else:
            w = torch.ones_like(s)
        gamma = self.cfg.gamma
        term = s * torch.log(d / gamma) + torch.log1p(gamma / d)
        value = (w * term).mean()
        return LossResult(value=value)


def build_cauchy_cross_entropy(cfg: CauchyCrossEntropyConfig, ctx: BuildContext) -> CauchyCrossEntropy:
    """DCH Cauchy cross-entropy on pairs of relaxed codes, class-balanced."""
    return CauchyCrossEntropy(cfg)


def components(register):
    register("loss", "cauchy_cross_entropy", build_cauchy_cross_entropy, config=CauchyCrossEntropyConfig)
