"""``isdh``: ISDH, instance similarity deep hashing (Zhang, Lai, Feng, arXiv 1803.02987).

IDHN's set-up (softsign codes in a memory bank, soft similarity ``ŝ``, mask ``M``, ``θ = α z Zᵀ``) with a
different treatment of the uncertain pairs, as DeepHash-pytorch trains it::

    loss = mean_{i,j} [γ M ℓ(θ, ŝ) + (1 − M)(ŝ − σ(θ))²]  +  λ · mean | |z| − 1 |

α = 0.5, γ = 10, λ (``quantization``) = 0.1. Parts: ``likelihood``, ``quantization``.
Reference: swuxyj/DeepHash-pytorch @ ab14068 ``ISDH.py`` (class ``DPSHLoss``).
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from hashkit.interfaces import BuildContext
from hashkit_plugins.losses.idhn import IDHN, IDHNConfig


@attrs.frozen
class ISDHConfig(IDHNConfig):
    #: weight γ of the likelihood on the certain pairs
    gamma: float = attrs.field(default=10.0, validator=attrs.validators.ge(0.0))


class ISDH(IDHN):
    name = "isdh"

    def pair_term(self, s: Tensor, certain: Tensor, theta: Tensor, nll: Tensor, length: int) -> Tensor:
        return self.cfg.gamma * certain * nll + (1 - certain) * (s - torch.sigmoid(theta)).pow(2)


def build_isdh(cfg: ISDHConfig, ctx: BuildContext) -> ISDH:
    """ISDH: IDHN's soft-similarity set-up with a squared sigmoid term on uncertain pairs."""
    return ISDH(cfg, ctx)


def components(register):
    from hashkit_plugins.losses._examples import bank_example

    register("loss", "isdh", build_isdh, config=ISDHConfig, example=bank_example)
