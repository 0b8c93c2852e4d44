"""``rmac``: regional maximum activations of convolutions (Tolias, Sicre, Jégou, ICLR 2016).

Square regions on a grid at ``levels`` scales: at level ``l`` the side is ``⌊2·min(H, W) / (l + 1)⌋``,
``l`` regions fit the short side and ``l + extra`` the long side, uniformly spaced, where ``extra`` makes
consecutive level-1 regions overlap by the fraction closest to ``overlap`` (0.4). The whole map is one more
region. Each region is max-pooled (over its MAX-mask locations when ``mask = "max"``; a region without any
kept location contributes nothing), L2-normalised, and the region vectors are summed. Scales, L2 and
whitening (the paper's PCA-whitening of regions is replaced by a learned whitening of the sum): see
:mod:`hashkit_plugins.aggregation._global_descriptor`.

Input ``(B, C, H, W)`` -> ``{"global": (B, C)}``.
"""

from __future__ import annotations

import math

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor

from hashkit.interfaces import BuildContext
from hashkit_plugins.aggregation._global_descriptor import GlobalDescriptor, GlobalDescriptorOptions


@attrs.frozen
class RMACConfig(GlobalDescriptorOptions):
    #: region levels (Tolias et al.: 3)
    levels: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    #: target overlap of consecutive regions
    overlap: float = attrs.field(default=0.4, validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)])


def rmac_regions(h: int, w: int, levels: int = 3, overlap: float = 0.4) -> list[tuple[int, int, int, int]]:
    """Regions ``(top, left, height, width)`` of an ``h x w`` map: the whole map, then the R-MAC grid."""
    regions = [(0, 0, h, w)]
    short, long_ = min(h, w), max(h, w)
    extra = 0
    if long_ > short:
        # long-side region counts n = 1 + extra; pick the overlap of level-1 regions closest to `overlap`
        best = math.inf
        for n in range(2, 8):
            step = (long_ - short) / (n - 1)
            err = abs((short * short - short * step) / (short * short) - overlap)
            if err < best:
                best, extra = err, n - 1
    for level in range(1, levels + 1):
        side = math.floor(2 * short / (level + 1))
        if side == 0:
            continue
        counts_h = level + (extra if h > w else 0)
        counts_w = level + (extra if w > h else 0)

        def starts(size: int, count: int) -> list[int]:
            if count == 1:
                return [0]
            step = (size - side) / (count - 1)
            return sorted({math.floor(i * step) for i in range(count)})

        for top in starts(h, counts_h):
            for left in starts(w, counts_w):
                regions.append((top, left, side, side))
    return regions


class RMAC(GlobalDescriptor):
    def __init__(self, cfg: RMACConfig, channels: int):
        super().__init__(cfg, channels)
        self.cfg = cfg

    def pool(self, x: Tensor, mask: Tensor) -> Tensor:
        masked = x.masked_fill(mask == 0, float("-inf"))
        total = torch.zeros(x.shape[:2], dtype=x.dtype, device=x.device)
        for top, left, rh, rw in rmac_regions(*x.shape[2:], self.cfg.levels, self.cfg.overlap):
            r = masked[:, :, top:top + rh, left:left + rw].amax(dim=(2, 3))
            r = torch.where(torch.isfinite(r), r, torch.zeros_like(r))
            total = total + F.normalize(r, dim=1)
        return total


def build_rmac(cfg: RMACConfig, ctx: BuildContext) -> RMAC:
    """R-MAC: sum of L2-normalised regional max-pooled vectors; optional scales, MAX-mask and whitening."""
    return RMAC(cfg, ctx.input_channels("rmac"))


def components(register):
    register("aggregation", "rmac", build_rmac, config=RMACConfig)
