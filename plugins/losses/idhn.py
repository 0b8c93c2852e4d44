"""``idhn``: IDHN, improved deep hashing with soft pairwise similarity (Zhang, Lai, Feng, IEEE TMM 2019).

As DeepHash-pytorch trains it: ``z = u / (1 + |u|)`` (softsign of the raw output) is written to the bank;
with the soft similarity ``ŝ_ij = y_iᵀY_j / (‖y_i‖‖Y_j‖ + 1e-5)`` and the mask ``M = 1[ŝ > 0.99] + 1[ŝ < 0.01]``
(pairs that are clearly similar or clearly dissimilar)::

    θ = α z Zᵀ
    loss = mean_{i,j} [M ℓ(θ, ŝ) + γ (1 − M)(θ + L − 2ŝL)²]  +  λ · mean | |z| − 1 |

with ``ℓ(θ, s) = log(1 + e^θ) − sθ``; α = 0.5, γ = 0.1, λ (``quantization``) = 0.1. On single-label data ``M ≡ 1``.
Parts: ``likelihood`` (the first mean), ``quantization``.
Reference: swuxyj/DeepHash-pytorch @ ab14068 ``IDHN.py`` (class ``DPSHLoss``).
"""

from __future__ import annotations

import attrs
from torch import Tensor

from hashkit.interfaces import BuildContext, LossInputs, LossResult
from hashkit_plugins.losses._memory_bank import BankConfig, BankLoss
from hashkit_plugins.losses._pairwise import cosine_label_similarity, pair_nll


@attrs.frozen
class IDHNConfig(BankConfig):
    #: scale α of the inner product θ = α z Zᵀ
    alpha: float = 0.5
    #: weight γ of the squared term on the uncertain (multi-label) pairs
    gamma: float = attrs.field(default=0.1, validator=attrs.validators.ge(0.0))
    #: weight λ of the quantisation term mean | |z| - 1 | (the reference's "lambda")
    quantization: float = attrs.field(default=0.1, validator=attrs.validators.ge(0.0))


def softsign(u: Tensor) -> Tensor:
    return u / (u.abs() + 1)


class IDHN(BankLoss):
    name = "idhn"

    def pair_term(self, s: Tensor, certain: Tensor, theta: Tensor, nll: Tensor, length: int) -> Tensor:
        """Per-pair loss from the soft similarity ``s``, the certainty mask, ``θ`` and ``ℓ(θ, s)``."""
        return certain * nll + self.cfg.gamma * (1 - certain) * (theta + length - 2 * s * length).pow(2)

    def forward(self, inputs: LossInputs) -> LossResult:
        u, y = self.read(inputs)
        z = softsign(u)
        codes, labels = self.pair_with(inputs, z, y)
        s = cosine_label_similarity(y, labels)
        certain = (s > 0.99).to(z.dtype) + (s < 0.01).to(z.dtype)
        theta = self.cfg.alpha * (z @ codes.t())
        likelihood = self.pair_term(s, certain, theta, pair_nll(theta, s), z.shape[1]).mean()
        quantization = (z.abs() - 1).abs().mean()
        value = likelihood + self.cfg.quantization * quantization
        return LossResult(value=value, parts={"likelihood": likelihood, "quantization": quantization})


def build_idhn(cfg: IDHNConfig, ctx: BuildContext) -> IDHN:
    """IDHN: soft-similarity pairwise likelihood on softsign codes against a memory bank."""
    return IDHN(cfg, ctx)


def components(register):
    from hashkit_plugins.losses._examples import bank_example

    register("loss", "idhn", build_idhn, config=IDHNConfig, example=bank_example)
