"""Shared machinery of the landmark-style global descriptors (``gem``, ``spoc``, ``rmac``).

Pipeline of :class:`GlobalDescriptor` for features ``X`` ``(B, C, H, W)``::

    for each scale kernel k in `scales`:   Y_k = max filter k (multiscale pre-step; k = 1 is X itself)
        M_k = MAX-mask of Y_k  (mask = "max")  or all ones (mask = "none")   (B, 1, H, W), no gradient
        d_k = pool(Y_k, M_k)                                                  (B, C)
    d = mean_k d_k
    normalize:  d = L2(d);  whitening:  d = L2(W d + b)  (W, b learned, identity / zero init)

Output ``{"global": (B, C)}``, float, same in train and eval. The options belong to every config class
derived from :class:`GlobalDescriptorOptions` and are documented in docs/methods/dagf.md.
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hashkit.interfaces import Aggregation, AggregationInput, AggregationOutput
from hashkit_plugins.attention.max_mask import max_mask
from hashkit_plugins.attention.multiscale import multiscale_filter, validate_odd_kernels


@attrs.frozen
class GlobalDescriptorOptions:
    #: odd max-filter kernel sizes applied before pooling, descriptors averaged (DAGF: 1, 3, 5)
    scales: tuple[int, ...] = attrs.field(default=(1,), validator=validate_odd_kernels)
    #: "max": pool only over MAX-mask locations of each scale (DAGF); "none": every location
    mask: Literal["none", "max"] = "none"
    #: L2-normalise the descriptor (before and after whitening)
    normalize: bool = True
    #: learned whitening: a Linear(C, C) with bias after the L2, identity-initialised
    whitening: bool = False


class GlobalDescriptor(Aggregation):
    """Base class: subclasses implement ``pool(x (B,C,H,W), mask (B,1,H,W) 0/1) -> (B, C)``."""

    def __init__(self, options: GlobalDescriptorOptions, channels: int):
        super().__init__()
        self.options = options
        self.descriptor_dims = {"global": channels}
        self.whiten = None
        if options.whitening:
            self.whiten = nn.Linear(channels, channels)
            with torch.no_grad():
                self.whiten.weight.copy_(torch.eye(channels))
                self.whiten.bias.zero_()

    def pool(self, x: Tensor, mask: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self, x: Tensor) -> Tensor:
        """The descriptor ``(B, C)`` of features ``x`` ``(B, C, H, W)`` (scales, mask, pool, L2, whitening)."""
        pooled = []
        for y in multiscale_filter(x, self.options.scales):
            if self.options.mask == "max":
                m = max_mask(y)
            else:
                m = torch.ones(y.shape[0], 1, *y.shape[2:], dtype=y.dtype, device=y.device)
            pooled.append(self.pool(y, m))
        d = pooled[0] if len(pooled) == 1 else torch.stack(pooled).mean(dim=0)
        if self.options.normalize:
            d = F.normalize(d, dim=1)
        if self.whiten is not None:
            d = self.whiten(d)
            if self.options.normalize:
                d = F.normalize(d, dim=1)
        return d

    def forward(self, inp: AggregationInput) -> AggregationOutput:
        return AggregationOutput(descriptors={"global": self.describe(inp.features)})

