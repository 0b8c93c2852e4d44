"""``uncertainty_balance``: a sum of inner losses, each weighted by a learned scalar (CHN's balanced loss).

For inner losses ``L_1 .. L_n`` (``terms``, nested loss components) and learned scalars ``α_1 .. α_n``
(initialised to ``init``, 1)::

    loss = Σ_j  L_j / α_j²  +  log(1 + α_j)            (parts: each term's value, each α)

CHN (Zeng & Zheng, arXiv 2303.11274; aassxun/DSH_Analysis @ 44271bc ``CHN.py`` and kaiba007/FG-CHN
``model/model_interface.py``) balances its code regression and its classification this way with
``terms = [proxy_code_mse, cross_entropy]``; the reference keeps α₁, α₂ on the model as ``alpha1``,
``alpha2`` (here: ``alpha.0``, ``alpha.1``, each of shape (1,), trained by the recipe's optimiser like any
loss parameter). At a
stationary point α³ / (1 + α) = 2 L, so a small task loss drives its α down and its weight up.

``alpha_param = "raw"`` (default, the reference) leaves α unconstrained: 1/α² explodes as α -> 0 and the
log is undefined for α <= -1 (the trainer then stops with a non-finite-loss error naming the parts);
``"softplus"`` (the fix) uses α = softplus(s) + 1e-6 with the stored parameter s initialised so that α
starts at ``init``.
"""

from __future__ import annotations

import math
from typing import Literal

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, ComponentRef, Loss, LossInputs, LossResult, nested_list

SOFTPLUS_EPS = 1e-6


@attrs.frozen
class UncertaintyBalanceConfig:
    #: the balanced losses, in order (CHN: proxy_code_mse, then cross_entropy)
    terms: tuple[ComponentRef, ...] = nested_list("loss")
    #: initial α of every term (CHN: 1)
    init: float = attrs.field(default=1.0, validator=attrs.validators.gt(0.0))
    #: "raw": α is the parameter (reference); "softplus": α = softplus(parameter) + 1e-6 (always > 0)
    alpha_param: Literal["raw", "softplus"] = "raw"


class UncertaintyBalance(Loss):
    def __init__(self, cfg: UncertaintyBalanceConfig, terms: list[tuple[str, Loss]]):
        super().__init__()
        if not terms:
            raise ContractError("uncertainty_balance needs at least one loss in 'terms'")
        self.cfg = cfg
        self.names = [name for name, _ in terms]
        self.terms = nn.ModuleList([loss for _, loss in terms])
        requires: list[str] = []
        for loss in self.terms:
            requires += [r for r in getattr(loss, "requires", ()) if r not in requires]
        self.requires = tuple(requires)
        start = cfg.init if cfg.alpha_param == "raw" else math.log(math.expm1(cfg.init - SOFTPLUS_EPS))
        # one (1,)-shaped parameter per term, as the reference's alpha1 / alpha2
        self.alpha = nn.ParameterList([nn.Parameter(torch.full((1,), float(start))) for _ in terms])

    def alphas(self) -> Tensor:
        alpha = torch.cat(list(self.alpha))
        return alpha if self.cfg.alpha_param == "raw" else F.softplus(alpha) + SOFTPLUS_EPS

    def forward(self, inputs: LossInputs) -> LossResult:
        alpha = self.alphas()
        total = torch.zeros((), device=alpha.device)
        parts: dict[str, Tensor] = {}
        for j, (name, loss) in enumerate(zip(self.names, self.terms)):
            value = loss(inputs).value.float()
            total = total + value / alpha[j] ** 2 + torch.log(1 + alpha[j])
            parts[name] = value.detach()
            parts[f"alpha.{name}"] = alpha[j].detach()
        return LossResult(value=total, parts=parts)


def build_uncertainty_balance(cfg: UncertaintyBalanceConfig, ctx: BuildContext) -> UncertaintyBalance:
    """Inner losses weighted by learned scalars: Σ L_j / α_j² + log(1 + α_j) (CHN's balanced loss)."""
    names: list[str] = []
    built = []
    for i, ref in enumerate(cfg.terms):
        names.append(ref.name if ref.name not in names else f"{ref.name}_{i}")
        built.append((names[-1], ctx.build(ref)))
    return UncertaintyBalance(cfg, built)


def _example():
    from hashkit.testing import ComponentExample

    return ComponentExample(config={"terms": [{"name": "cross_entropy"}, {"name": "bit_balance"}]})


def components(register):
    register("loss", "uncertainty_balance", build_uncertainty_balance, config=UncertaintyBalanceConfig,
             example=_example)
