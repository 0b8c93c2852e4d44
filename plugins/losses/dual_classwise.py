"""``dual_classwise``: DCDH's centre-based dual-constrained loss with regression-matrix target bits.

Zhang, Zhe, Chen, Yan, "Deep center-based dual-constrained hashing for discriminative face image
retrieval", Pattern Recognition 117 (2021); as mzhang367/DCDH-PyTorch @ df19abb (``loss.py``) and
aassxun/DSH_Analysis @ 44271bc (``DCDH.py``) compute it. For the real-valued codes ``u = logits (B, L)``, one-hot
labels ``Y (B, C)`` with class indices ``y``, and class centres ``c (C, L)``::

    d_ik  = ||u_i||² + ||c_k||² - 2 u_i·c_k
    p_ik  = exp(-σ d_ik / 2) / (Σ_k' exp(-σ d_ik' / 2) + 1e-6)
    L1    = -(1/B) Σ_i log(p_{i,y_i} + 1e-6)                                     intra-class ("intra")
    θ_kk' = (L/2) cos(c_k, c_k') for k != k', θ_kk = 0
    L2    = (1 / (C(C-1))) Σ_{k,k'} softplus(θ_kk')                             inter-class ("inter")
    W     = (YᵀY)⁺ Yᵀ sign(u)              (C, L): each class's mean sign in the batch (no gradient)
    Bt    = sign(Y W + η u)                (B, L): class-majority bits, ties broken by sign(u) (no gradient)
    Lq    = (1/B) ||u - Bt||²                                                     ("quant")
    loss  = L1 + λ2 · L2 + η · Lq

with σ = 0.25, λ2 = ``inner_weight`` = 0.1, η = 0.01. The sum in L2 includes the C diagonal entries
(softplus(0) = log 2 each, a constant offset); ``exclude_diagonal = true`` drops them.

Centres: drawn once from N(0, 1) when the loss is built (torch's generator, seeded by the trainer) and saved
with the loss state (``centers``). ``learn_centers = false`` (default) reproduces DSH_Analysis, whose optimiser
holds only the model's parameters: the centres never change, L2 is a constant, L1 is a fixed random-prototype
classifier. ``learn_centers = true`` is the official DCDH behaviour (the centres are trained by the recipe's
optimiser, with its learning rate and weight decay).
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit_plugins.losses._code_input import CodeInput, code_tensor


@attrs.frozen
class DualClasswiseConfig:
    #: σ, the scale of the squared distances (DCDH's "class gap": 0.25)
    sigma: float = attrs.field(default=0.25, validator=attrs.validators.gt(0.0))
    #: λ2, weight of the inter-class centre term (0.1)
    inner_weight: float = attrs.field(default=0.1, validator=attrs.validators.ge(0.0))
    #: η, weight of the quantisation term and of u in the target bits (0.01)
    eta: float = attrs.field(default=0.01, validator=attrs.validators.ge(0.0))
    #: train the centres (official DCDH); false = frozen random centres (DSH_Analysis)
    learn_centers: bool = False
    #: leave the C diagonal log 2 terms out of the inter-class sum (the reference includes them)
    exclude_diagonal: bool = False
    #: the codes the loss works on: the raw "logits" (DCDH's BatchNorm output) or the bounded "codes"
    input: CodeInput = "logits"


def softplus_stable(x: Tensor) -> Tensor:
    """``log(1 + exp(-|x|)) + max(x, 0)``, DCDH's ``Log``."""
    return torch.log1p(torch.exp(-x.abs())) + x.clamp_min(0)


def regression_targets(u: Tensor, labels: Tensor, eta: float) -> Tensor:
    """``Bt = sign(Y W + η u)`` with ``W = (YᵀY)⁺ Yᵀ sign(u)``, without gradient."""
    with torch.no_grad():
        y = labels.to(u.dtype)
        w = torch.linalg.pinv(y.t() @ y) @ y.t() @ torch.sign(u)
        return torch.sign(y @ w + eta * u)


class DualClasswise(Loss):
    def __init__(self, cfg: DualClasswiseConfig, code_length: int, num_classes: int):
        super().__init__()
        self.cfg = cfg
        self.requires = (cfg.input, "labels")
        self.centers = nn.Parameter(torch.randn(num_classes, code_length), requires_grad=cfg.learn_centers)

    def forward(self, inputs: LossInputs) -> LossResult:
        cfg = self.cfg
        u = code_tensor(inputs, cfg.input, "dual_classwise").to(self.centers.dtype)
        b, bits = u.shape
        num_classes = self.centers.shape[0]
        labels = inputs.labels.argmax(dim=1)
        dist = (u.pow(2).sum(dim=1, keepdim=True) + self.centers.pow(2).sum(dim=1)[None]
                - 2 * u @ self.centers.t())
        e = torch.exp(-0.5 * cfg.sigma * dist)
        p = e / (e.sum(dim=1, keepdim=True) + 1e-6)
        intra = -torch.log(p.gather(1, labels[:, None]) + 1e-6).sum() / b
        normed = F.normalize(self.centers, dim=1)
        off = ~torch.eye(num_classes, dtype=torch.bool, device=u.device)
        theta = torch.where(off, 0.5 * bits * normed @ normed.t(), torch.zeros((), device=u.device))
        terms = softplus_stable(theta)
        if cfg.exclude_diagonal:
            terms = terms * off
        inter = terms.sum() / (num_classes * (num_classes - 1))
        quant = (u - regression_targets(u, inputs.labels, cfg.eta)).pow(2).sum() / b
        value = intra + cfg.inner_weight * inter + cfg.eta * quant
        return LossResult(value=value, parts={"intra": intra.detach(), "inter": inter.detach(), "quant": quant.detach()})


def build_dual_classwise(cfg: DualClasswiseConfig, ctx: BuildContext) -> DualClasswise:
    """DCDH: normalised-Gaussian pull to class centres, centre separation, regression-matrix quantisation."""
    if not ctx.code_length or not ctx.num_classes:
        raise ContractError("dual_classwise needs the code length and the number of classes")
    if ctx.num_classes < 2:
        raise ContractError("dual_classwise needs at least 2 classes (the centre term averages over pairs)")
    return DualClasswise(cfg, ctx.code_length, ctx.num_classes)


def components(register):
    register("loss", "dual_classwise", build_dual_classwise, config=DualClasswiseConfig)
