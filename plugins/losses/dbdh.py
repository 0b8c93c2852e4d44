"""``dbdh``: DBDH, deep balanced discrete hashing (Neurocomputing 2020), as DeepHash-pytorch trains it.

``z = clamp(u, −1, 1)`` (``activation = "tanh"``: ``tanh u``, the fix: clamp has no gradient outside
[−1, 1]) is written to the bank; DPSH's likelihood on ``z``, plus a *per-code* balance term (DeepHash-pytorch
calls it quantisation)::

    loss = mean_{i,j} [log(1 + e^θ_ij) − s_ij θ_ij]  +  α · mean_i |mean_k z_ik|^p,   θ = ½ z Zᵀ

α = 0.1, p = 2 (p = 1: absolute value). Parts: ``likelihood``, ``balance``.
Reference: swuxyj/DeepHash-pytorch @ ab14068 ``DBDH.py`` (class ``DPSHLoss``).
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch

from hashkit.interfaces import BuildContext, LossInputs, LossResult
from hashkit_plugins.losses._memory_bank import BankConfig, BankLoss
from hashkit_plugins.losses._pairwise import pairwise_likelihood


@attrs.frozen
class DBDHConfig(BankConfig):
    #: weight α of the per-code balance term
    alpha: float = attrs.field(default=0.1, validator=attrs.validators.ge(0.0))
    #: exponent of the balance term: 2 (square) or 1 (absolute value)
    p: Literal[1, 2] = 2
    #: "clamp" to [-1, 1] (reference) or "tanh" (fix: clamp has no gradient outside [-1, 1])
    activation: Literal["clamp", "tanh"] = "clamp"


class DBDH(BankLoss):
    name = "dbdh"

    def forward(self, inputs: LossInputs) -> LossResult:
        u, y = self.read(inputs)
        z = u.clamp(min=-1, max=1) if self.cfg.activation == "clamp" else torch.tanh(u)
        codes, labels = self.pair_with(inputs, z, y)
        likelihood = pairwise_likelihood(z, y, codes, labels)
        per_code = z.mean(dim=1)
        balance = (per_code.abs() if self.cfg.p == 1 else per_code.pow(2)).mean()
        value = likelihood + self.cfg.alpha * balance
        return LossResult(value=value, parts={"likelihood": likelihood, "balance": balance})


def build_dbdh(cfg: DBDHConfig, ctx: BuildContext) -> DBDH:
    """DBDH: DPSH's bank likelihood on clamped codes plus a per-code balance term."""
    return DBDH(cfg, ctx)


def components(register):
    from hashkit_plugins.losses._examples import bank_example

    register("loss", "dbdh", build_dbdh, config=DBDHConfig, example=bank_example)
