"""``dtsh``: DTSH, deep supervised hashing with triplet labels (Wang, Shi, Kitani, ACCV 2016).

As DeepHash-pytorch trains it (batch only, raw output ``u``): ``Θ = u uᵀ`` (no ½; ``half_inner_product``
gives the paper's ``½ u uᵀ``). For every anchor ``a`` of the batch with at least one positive (the anchor
itself counts: it shares its own label) and one negative, over all its (positive p, negative n) pairs::

    t = clamp(Θ_ap − Θ_an − α, −100, 50)        ℓ_a = mean_{p,n} [log(1 + e^t) − t]

and ``loss = mean_a ℓ_a + λ · mean (u − sign u)²`` (0 + quantisation when no anchor qualifies); α = 5, λ = 1.
Parts: ``triplet``, ``quantization``, ``anchors`` (the fraction of anchors used).
Reference: swuxyj/DeepHash-pytorch @ ab14068 ``DTSH.py`` (``DTSHLoss``); losses.md §11.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F

from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit_plugins.losses._batch_input import RawInputConfig, read_batch


@attrs.frozen
class DTSHConfig(RawInputConfig):
    #: triplet margin α on the inner products
    alpha: float = 5.0
    #: weight λ of the quantisation term mean (u - sign u)^2 (the reference's "lambda")
    quantization: float = attrs.field(default=1.0, validator=attrs.validators.ge(0.0))
    #: Θ = ½ u uᵀ as in the paper (the port uses the full inner product)
    half_inner_product: bool = False


class DTSH(Loss):
    def __init__(self, cfg: DTSHConfig):
        super().__init__()
        self.cfg = cfg
        self.requires = (cfg.input, "labels")

    def forward(self, inputs: LossInputs) -> LossResult:
        u, y = read_batch(inputs, self.cfg.input, "dtsh")
        theta = u @ u.t() * (0.5 if self.cfg.half_inner_product else 1.0)
        pos = (y @ y.t()) > 0
        neg = ~pos
        valid = pos.any(dim=1) & neg.any(dim=1)
        t = (theta[:, :, None] - theta[:, None, :] - self.cfg.alpha).clamp(min=-100, max=50)
        mask = (pos[:, :, None] & neg[:, None, :]).to(u.dtype)
        per_triplet = F.softplus(-t)  # = log(1 + e^t) - t
        per_anchor = (per_triplet * mask).sum(dim=(1, 2)) / mask.sum(dim=(1, 2)).clamp(min=1)
        triplet = per_anchor[valid].sum() / valid.sum().clamp(min=1)
        quantization = (u - torch.sign(u)).pow(2).mean()
        value = triplet + self.cfg.quantization * quantization
        return LossResult(value=value, parts={"triplet": triplet, "quantization": quantization,
                                              "anchors": valid.to(u.dtype).mean()})


def build_dtsh(cfg: DTSHConfig, ctx: BuildContext) -> DTSH:
    """DTSH: triplet likelihood over every (anchor, positive, negative) of the batch, plus quantisation."""
    return DTSH(cfg)


def components(register):
    register("loss", "dtsh", build_dtsh, config=DTSHConfig)
