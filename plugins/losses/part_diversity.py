"""``part_diversity``: ExchNet's attention constraints, a hinge on the mean Hellinger distance between parts.

For part distributions P (B, K, N) (each row a probability vector: the ``exchange_branches`` extras
``part_spatial``, softmax over positions, or ``part_channel``, softmax over channels) and a margin t::

    Hel(a, c) = ||sqrt(a) - sqrt(c)||_2 / sqrt(2)          (in [0, 1])
    loss      = (1 / B) * sum_b ReLU( t - mean_{k < k'} Hel(P_bk, P_bk') )

As ludics/fghash @ 077160f (``models/exchnet_loss.py``; identical in aassxun/DSH_Analysis @ 44271bc):
the spatial-diversity term ``SP = sum_b (1 - mean Hel)`` is this loss on ``part_spatial`` with t = 1 (the mean
distance never exceeds 1, so the hinge is inactive), the channel term ``CH = sum_b ReLU(0.4 - mean Hel)`` is
it on ``part_channel`` with t = 0.4; both are divided by the batch size and weighted 1.0 by both reference
trainers (the loss class defaults of 0.1 are not used). Needs at least two parts.
"""

from __future__ import annotations

import itertools
import math
from typing import Literal

import attrs
import torch

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult


@attrs.frozen
class PartDiversityConfig:
    #: the extra holding the (B, K, N) part distributions
    distributions: Literal["part_spatial", "part_channel"] = "part_spatial"
    #: hinge margin t on the mean pairwise Hellinger distance (1: ExchNet's spatial term, 0.4: its channel term)
    margin: float = attrs.field(default=1.0, validator=attrs.validators.ge(0.0))


def mean_pairwise_hellinger(p: torch.Tensor) -> torch.Tensor:
    """(B, K, N) distributions -> (B,) mean Hellinger distance over the K(K-1)/2 part pairs."""
    k = p.shape[1]
    if k < 2:
        raise ContractError(f"part_diversity needs at least two parts, found {k}")
    root = p.sqrt()
    pairs = list(itertools.combinations(range(k), 2))
    left = root[:, [i for i, _ in pairs]]
    right = root[:, [j for _, j in pairs]]
    return (left - right).norm(dim=2).mean(dim=1) / math.sqrt(2)


class PartDiversity(Loss):
    def __init__(self, cfg: PartDiversityConfig):
        super().__init__()
        self.cfg = cfg
        self.requires = (f"extras.{cfg.distributions}",)

    def forward(self, inputs: LossInputs) -> LossResult:
        p = inputs.extras.get(self.cfg.distributions)
        if p is None:
            raise ContractError(f"loss 'part_diversity' needs the extra {self.cfg.distributions!r} (an aggregation "
                                "with part distributions, e.g. exchange_branches)")
        distance = mean_pairwise_hellinger(p.float())
        value = torch.relu(self.cfg.margin - distance).sum() / p.shape[0]
        return LossResult(value=value, parts={"distance": distance.mean().detach()})


def build_part_diversity(cfg: PartDiversityConfig, ctx: BuildContext) -> PartDiversity:
    """ExchNet attention constraint: hinge on the mean pairwise Hellinger distance of part distributions."""
    return PartDiversity(cfg)


def _example():
    from hashkit.testing import ComponentExample, example_loss_inputs

    def inputs(comp):
        li = example_loss_inputs()
        g = torch.Generator().manual_seed(3)
        li.extras = {"part_spatial": torch.randn(6, 4, 9, generator=g).softmax(dim=2).requires_grad_()}
        return (li,)

    return ComponentExample(inputs=inputs)


def components(register):
    register("loss", "part_diversity", build_part_diversity, config=PartDiversityConfig, example=_example)
