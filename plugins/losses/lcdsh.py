"""``lcdsh``: LCDSH, locality-constrained deep supervised hashing (Zhu, Gao, IJCAI 2017).

As DeepHash-pytorch trains it (batch only, raw output ``u``, all b×b pairs including the diagonal)::

    s̃_ij = 2·1[y_iᵀy_j > 0] − 1       θ = clamp(½ u uᵀ, −50, 50)       θ_b = ½ sign(u) sign(u)ᵀ
    loss = mean log(1 + e^{−s̃ θ})  +  λ · mean (σ(θ) − σ(θ_b))²

λ = 3. Parts: ``likelihood``, ``binary``. Reference: swuxyj/DeepHash-pytorch @ ab14068 ``LCDSH.py``.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F

from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit_plugins.losses._batch_input import RawInputConfig, read_batch


@attrs.frozen
class LCDSHConfig(RawInputConfig):
    #: weight λ of the term matching the relaxed and the binary pair probabilities (the reference's "lambda")
    binary: float = attrs.field(default=3.0, validator=attrs.validators.ge(0.0))


class LCDSH(Loss):
    def __init__(self, cfg: LCDSHConfig):
        super().__init__()
        self.cfg = cfg
        self.requires = (cfg.input, "labels")

    def forward(self, inputs: LossInputs) -> LossResult:
        u, y = read_batch(inputs, self.cfg.input, "lcdsh")
        s = 2 * (y @ y.t() > 0).to(u.dtype) - 1
        theta = (0.5 * (u @ u.t())).clamp(min=-50, max=50)
        b = torch.sign(u)
        theta_b = 0.5 * (b @ b.t())
        likelihood = F.softplus(-s * theta).mean()
        binary = (torch.sigmoid(theta) - torch.sigmoid(theta_b)).pow(2).mean()
        return LossResult(value=likelihood + self.cfg.binary * binary,
                          parts={"likelihood": likelihood, "binary": binary})


def build_lcdsh(cfg: LCDSHConfig, ctx: BuildContext) -> LCDSH:
    """LCDSH: pairwise likelihood on the batch plus a match of relaxed and binary pair probabilities."""
    return LCDSH(cfg)


def components(register):
    register("loss", "lcdsh", build_lcdsh, config=LCDSHConfig)
