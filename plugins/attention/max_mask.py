"""``max_mask``: MAX-mask feature selection (Hoang et al., ACM MM 2017), used by DAGF before pooling.

For ``X`` ``(B, C, H, W)``: each channel ``c`` votes for its spatial argmax ``(h_c*, w_c*)`` (the first
location in row-major order on ties); the mask is the union of the votes,
``M(h, w) = 1`` iff ``(h, w) = argmax X_c`` for some voting channel ``c`` (at most C locations are kept).
Which channels vote (``rule``):

- ``"peaks"`` (default): only channels whose maximum is > 0. A channel that is zero everywhere (common
  after a ReLU) has no peak; under the literal rule it votes for ``(0, 0)``, so that corner is kept
  whenever such a channel exists. An image without any positive channel keeps every location.
- ``"first_index"``: every channel votes, the literal first-index rule.

:func:`max_mask` computes it; the global descriptor aggregations apply it with ``mask = "max"`` and pool
over the kept locations only, taking the peaks from the unfiltered map under ``"peaks"`` (see
:mod:`hashkit_plugins.aggregation._global_descriptor`). As an attention component it zeroes the other
locations:

- features ``X ⊙ M`` ``(B, C, H, W)``; with ``groups = G`` the channels form G equal consecutive groups
  (e.g. the scales of a concatenating ``multiscale``), each with its own mask, or with
  ``peaks_from = "first_group"`` all with the mask of group 0 (the unfiltered scale when the
  ``multiscale`` kernels start with 1);
- maps: ``M`` ``(B, G, H, W)`` in {0, 1} when ``emit_maps = true``.

The mask is a selection computed without gradient; gradients flow through the kept locations.
Note that zeroing changes averages (GAP divides by H·W, not by the kept count); the aggregations'
``mask`` option divides by the kept count (pooling over the kept locations).
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
from einops import rearrange
from torch import Tensor

from hashkit.errors import ContractError
from hashkit.interfaces import Attention, AttentionOutput, BuildContext


MASK_RULES = ("peaks", "first_index")


@torch.no_grad()
def max_mask(x: Tensor, rule: str = "peaks") -> Tensor:
    """MAX-mask of ``x`` ``(B, C, H, W)``: ``(B, 1, H, W)`` float 0/1, 1 where a voting channel has its argmax.

    ``rule``: ``"peaks"`` (channels with a positive maximum vote; no such channel: all ones) or
    ``"first_index"`` (every channel votes).
    """
    if rule not in MASK_RULES:
        raise ContractError(f"max_mask rule must be one of {MASK_RULES}, found {rule!r}")
    b, c, h, w = x.shape
    flat = x.detach().reshape(b, c, h * w)
    flat_arg = flat.argmax(dim=2)  # first maximal index on ties
    votes = torch.ones(b, c, dtype=x.dtype, device=x.device)
    if rule == "peaks":
        votes = (flat.amax(dim=2) > 0).to(x.dtype)
    mask = torch.zeros(b, h * w, dtype=x.dtype, device=x.device)
    mask.scatter_add_(1, flat_arg, votes)
    mask = (mask > 0).to(x.dtype)
    if rule == "peaks":
        mask[votes.sum(dim=1) == 0] = 1.0
    return mask.reshape(b, 1, h, w)


@attrs.frozen
class MaxMaskConfig:
    #: equal consecutive channel groups with separate masks (the scales of a concatenating multiscale)
    groups: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    #: hand the masks to the aggregation / overlays as attention maps
    emit_maps: bool = False
    #: which channels vote: "peaks" (positive maximum) or "first_index" (all, the literal rule)
    rule: Literal["peaks", "first_index"] = "peaks"
    #: "own": each group's mask from its own channels; "first_group": every group takes group 0's mask
    peaks_from: Literal["own", "first_group"] = "own"


class MaxMask(Attention):
    """Zeroes every location that is not the spatial argmax of at least one channel (per group)."""

    def __init__(self, cfg: MaxMaskConfig, channels: int):
        super().__init__()
        if channels % cfg.groups:
            raise ContractError(f"max_mask: {channels} channels cannot be split into groups = {cfg.groups}")
        self.cfg = cfg
        self.in_channels = self.out_channels = channels
        self.num_maps = cfg.groups if cfg.emit_maps else 0
        self.map_names = tuple(f"max_mask{g}" for g in range(self.num_maps))

    def forward(self, x: Tensor) -> AttentionOutput:
        grouped = rearrange(x, "b (g c) h w -> (b g) c h w", g=self.cfg.groups)
        masks = rearrange(max_mask(grouped, self.cfg.rule), "(b g) 1 h w -> b g h w", g=self.cfg.groups)
        if self.cfg.peaks_from == "first_group":
            masks = masks[:, :1].expand(-1, self.cfg.groups, -1, -1).contiguous()
        expanded = masks.repeat_interleave(x.shape[1] // self.cfg.groups, dim=1)
        return AttentionOutput(features=x * expanded, maps=masks if self.num_maps else None)


def build_max_mask(cfg: MaxMaskConfig, ctx: BuildContext) -> MaxMask:
    """MAX-mask: keep only locations that are some channel's spatial argmax."""
    return MaxMask(cfg, ctx.input_channels("max_mask"))


def components(register):
    register("attention", "max_mask", build_max_mask, config=MaxMaskConfig)
