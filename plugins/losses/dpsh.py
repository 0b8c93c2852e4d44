"""``dpsh``: DPSH, deep pairwise-supervised hashing (Li, Zhao, Kang, IJCAI 2016), as DeepHash-pytorch trains it.

With ``u (b, L)`` the raw hash-layer output (``input = "logits"``) and the memory bank ``U (n, L)``, ``Y (n, C)``
of every training item (written with the batch first, see ``_memory_bank``)::

    θ_ij = ½ u_iᵀ U_j          s_ij = 1[y_iᵀ Y_j > 0]
    loss = mean_{i,j} [log(1 + e^θ_ij) − s_ij θ_ij]  +  α · mean_{i,k} (u_ik − sign u_ik)²

α = 0.1; ``sign(0) = 0`` as ``torch.sign``. Parts: ``likelihood``, ``quantization``.
Reference: swuxyj/DeepHash-pytorch @ ab14068 ``DPSH.py`` (``DPSHLoss``).
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from hashkit.interfaces import BuildContext, LossInputs, LossResult
from hashkit_plugins.losses._memory_bank import BankConfig, BankLoss
from hashkit_plugins.losses._pairwise import pairwise_likelihood


@attrs.frozen
class DPSHConfig(BankConfig):
    #: weight α of the quantisation term mean (u - sign u)^2
    alpha: float = attrs.field(default=0.1, validator=attrs.validators.ge(0.0))


class DPSH(BankLoss):
    name = "dpsh"

    def quantization(self, u: Tensor) -> Tensor:
        return (u - torch.sign(u)).pow(2).mean()

    def forward(self, inputs: LossInputs) -> LossResult:
        u, y = self.read(inputs)
        codes, labels = self.pair_with(inputs, u, y)
        likelihood = pairwise_likelihood(u, y, codes, labels)
        quantization = self.quantization(u)
        value = likelihood + self.cfg.alpha * quantization
        return LossResult(value=value, parts={"likelihood": likelihood, "quantization": quantization})


def build_dpsh(cfg: DPSHConfig, ctx: BuildContext) -> DPSH:
    """DPSH: pairwise likelihood against a memory bank of all training codes, plus sign-gap quantisation."""
    return DPSH(cfg, ctx)


def components(register):
    from hashkit_plugins.losses._examples import bank_example

    register("loss", "dpsh", build_dpsh, config=DPSHConfig, example=bank_example)
