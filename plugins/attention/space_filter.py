"""``space_filter``: FISH's space filter, halving the positions whose activation is below the image mean.

With ``A = Σ_c F_c`` the channel sum of the input (detached) and ``ā`` its mean over the ``h·w`` positions of
each image, the mask is (Chen et al., "Fine-Grained Hashing With Double Filtering", TIP 2022; as
chenzhenduo/FISH and aassxun/DSH_Analysis @ 44271bc ``models/fish.py`` compute it)::

    M(p) = 1      where A(p) > ā
           0.5    where A(p) < ā
           0      where A(p) = ā exactly        (neither comparison holds; ``ties = "reference"``)

and the output is ``F ⊙ M`` (M broadcast over channels, a constant for autograd: the gradient reaches F
scaled by M). ``ties = "half"`` gives the equal positions 0.5 instead of 0 (a measure-zero case, but an
all-equal map — e.g. an all-zero ReLU output — would otherwise be wiped out).

Tensor contract: input ``(B, C, h, w)`` -> ``AttentionOutput(features = F ⊙ M (B, C, h, w),
maps = M (B, 1, h, w) in {0, 0.5, 1})``; the map is named ``space_mask`` for ``hashkit attention``.
No parameters; same in train and eval mode.
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
from torch import Tensor

from hashkit.interfaces import Attention, AttentionOutput, BuildContext


@attrs.frozen
class SpaceFilterConfig:
    #: multiplier of the positions whose value is below the image mean (FISH: 0.5)
    low: float = attrs.field(default=0.5, validator=attrs.validators.ge(0.0))
    #: positions exactly at the mean: "reference" gives them 0, "half" gives them ``low``
    ties: Literal["reference", "half"] = "reference"


def space_mask(features: Tensor, low: float = 0.5, ties: str = "reference") -> Tensor:
    """``(B, C, h, w) -> (B, 1, h, w)``: the space-filter mask of the channel sum (no gradient)."""
    with torch.no_grad():
        a = features.detach().sum(dim=1, keepdim=True)
        mean = a.mean(dim=(2, 3), keepdim=True)
        mask = (a > mean).to(a.dtype) + (a < mean).to(a.dtype) * low
        if ties == "half":
            mask = mask + (a == mean).to(a.dtype) * low
    return mask


class SpaceFilter(Attention):
    num_maps = 1
    map_names = ("space_mask",)

    def __init__(self, cfg: SpaceFilterConfig, channels: int):
        super().__init__()
        self.cfg = cfg
        self.in_channels = self.out_channels = channels

    def forward(self, x: Tensor) -> AttentionOutput:
        mask = space_mask(x, self.cfg.low, self.cfg.ties)
        return AttentionOutput(features=x * mask, maps=mask)


def build_space_filter(cfg: SpaceFilterConfig, ctx: BuildContext) -> SpaceFilter:
    """FISH space filter: positions below the image's mean channel-sum activation are halved."""
    return SpaceFilter(cfg, ctx.input_channels("space_filter"))


def components(register):
    register("attention", "space_filter", build_space_filter, config=SpaceFilterConfig)
