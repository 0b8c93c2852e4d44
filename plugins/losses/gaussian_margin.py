"""``gaussian_margin``: a Gaussian class-conditional classifier in code space with a multiplicative margin.

DPAH as aassxun/DSH_Analysis @ 44271bc implements it (``models/dpah.py: SW_layer`` and ``DPAH.py``); by form
the large-margin Gaussian-mixture loss (Wan et al., CVPR 2018). On the codes ``h = sigmoid(logits)`` (B, L)
(``input = "sigmoid"``) with class means ``mu`` (L, C) and variances ``sigma`` (L, C)::

    d_ic   = Σ_k (h_ik - mu_kc)² / max(sigma_kc, 1e-9)
    z_ic   = -½ d_ic (1 + m·[c = y_i]) + log max(1e-9, (Π_k sigma_kc)^(-1/2))
    L_cls  = CE(z, y)
    L_lkd  = λ · mean_i [ ½ d_{i,y_i} - log max(1e-9, (Π_k sigma_{k,y_i})^(-1/2)) ]
    loss   = L_cls + L_lkd                                   (parts: cls, lkd, margin)

with y the argmax of the (one-hot) label, λ = ``likelihood_weight`` (0.01). The margin m starts at
``margin`` (0.1) and, counting the loss's calls in training mode n = 1, 2, ..., becomes
``min(m · margin_growth, margin_max)`` whenever ``n mod margin_step = margin_step - 1`` — so 0.1 up to call
4,998 and 0.2 from call 4,999 on (reference values 2, 5000, 0.2). The call counter and the margin are
buffers (``calls``, ``margin``), saved with the loss state; the reference keeps them in Python attributes, so
its resumed runs restart the schedule.

Initialisation (reference): ``mu`` kaiming-normal with mode fan_out on the (L, C) matrix, i.e. N(0, 2/L);
``sigma`` constant 1 and frozen (a parameter without gradient, so both log-determinant terms are exactly 0);
``learn_variance = true`` trains it (not in the reference). Names ``mu`` and ``sigma`` are the reference's
``imgs_semantic.mu`` / ``imgs_semantic.sigma``; ``mu`` is trained by the recipe's optimiser (with its
weight decay, as the reference's single parameter group does).

Inputs: ``logits (B, L)``, ``labels (B, C)`` one-hot.
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult

EPS = 1e-9


@attrs.frozen
class GaussianMarginConfig:
    #: the codes the Gaussians model: "sigmoid" of the logits (DPAH), or the bounded "codes" as they are
    input: Literal["sigmoid", "codes"] = "sigmoid"
    #: initial multiplicative margin on the true class's squared distance (DPAH: 0.1)
    margin: float = attrs.field(default=0.1, validator=attrs.validators.ge(0.0))
    #: margin multiplier applied every margin_step calls (DPAH: 2)
    margin_growth: float = attrs.field(default=2.0, validator=attrs.validators.ge(0.0))
    #: calls between margin updates (DPAH: 5000)
    margin_step: int = attrs.field(default=5000, validator=attrs.validators.ge(1))
    #: largest margin (DPAH: 0.2)
    margin_max: float = attrs.field(default=0.2, validator=attrs.validators.ge(0.0))
    #: λ, weight of the likelihood term (DPAH: 0.01)
    likelihood_weight: float = attrs.field(default=0.01, validator=attrs.validators.ge(0.0))
    #: train the variances (the reference keeps them frozen at 1)
    learn_variance: bool = False


def gaussian_logits(h: Tensor, labels: Tensor, mu: Tensor, sigma: Tensor, margin: float) -> tuple[Tensor, Tensor]:
    """``h (B, L)``, class indices ``labels (B,)``, ``mu, sigma (L, C)`` -> margin logits ``(B, C)`` and the
    per-sample likelihood term ``½ d_{i,y_i} - log max(eps, det_y^-1/2)`` ``(B,)``."""
    var = sigma.clamp_min(EPS)
    dist = ((h[:, :, None] - mu[None]) ** 2 / var[None]).sum(dim=1)
    log_det = torch.log((sigma.prod(dim=0) ** -0.5).clamp_min(EPS))
    true = F.one_hot(labels, mu.shape[1]).bool()
    scaled = torch.where(true, -0.5 * dist * (1 + margin), -0.5 * dist)
    likelihood = 0.5 * dist.gather(1, labels[:, None]).squeeze(1) - log_det[labels]
    return scaled + log_det[None], likelihood


class GaussianMargin(Loss):
    requires = ("logits", "labels")

    def __init__(self, cfg: GaussianMarginConfig, code_length: int, num_classes: int):
        super().__init__()
        self.cfg = cfg
        if cfg.input == "codes":
            self.requires = ("codes", "labels")
        self.mu = nn.Parameter(torch.empty(code_length, num_classes))
        nn.init.kaiming_normal_(self.mu, mode="fan_out", nonlinearity="relu")
        self.sigma = nn.Parameter(torch.ones(code_length, num_classes), requires_grad=cfg.learn_variance)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        self.register_buffer("margin", torch.tensor(float(cfg.margin)))

    def _advance_margin(self) -> None:
        cfg = self.cfg
        self.calls += 1
        if int(self.calls) % cfg.margin_step == cfg.margin_step - 1:
            self.margin.fill_(min(float(self.margin) * cfg.margin_growth, cfg.margin_max))

    def forward(self, inputs: LossInputs) -> LossResult:
        if self.training:
            self._advance_margin()
        source = inputs.logits if self.cfg.input == "sigmoid" else inputs.codes
        h = source.to(self.mu.dtype)
        h = torch.sigmoid(h) if self.cfg.input == "sigmoid" else h
        labels = inputs.labels.argmax(dim=1)
        logits, likelihood = gaussian_logits(h, labels, self.mu, self.sigma, float(self.margin))
        cls = F.cross_entropy(logits, labels)
        lkd = self.cfg.likelihood_weight * likelihood.mean()
        return LossResult(value=cls + lkd, parts={"cls": cls.detach(), "lkd": lkd.detach(),
                                                  "margin": self.margin.detach().clone()})


def build_gaussian_margin(cfg: GaussianMarginConfig, ctx: BuildContext) -> GaussianMargin:
    """Gaussian class means in code space with a growing multiplicative margin and a likelihood term (DPAH)."""
    if not ctx.code_length or not ctx.num_classes:
        raise ContractError("gaussian_margin needs the code length and the number of classes")
    return GaussianMargin(cfg, ctx.code_length, ctx.num_classes)


def components(register):
    register("loss", "gaussian_margin", build_gaussian_margin, config=GaussianMarginConfig)
