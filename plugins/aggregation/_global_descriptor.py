"""Shared machinery of the landmark-style global descriptors (``gem``, ``spoc``, ``rmac``).

Pipeline of :class:`GlobalDescriptor` for features ``X`` ``(B, C, H, W)``::

    for each scale kernel k in `scales`:   Y_k = max filter k (multiscale pre-step; k = 1 is X itself)
        M_k = MAX-mask (mask = "max") or all ones (mask = "none")            (B, 1, H, W), no gradient
        d_k = pool(Y_k, M_k)                                                  (B, C)
    d = mean_k d_k

The MAX-mask (``mask_rule``): ``"peaks"`` (default) takes the peaks of the channels with a positive maximum
from the unfiltered X, the same locations for every scale, so scale k pools the k x k windows centred on
the peaks. ``"first_index"`` is the literal rule on each filtered map: every channel votes for the first
argmax of Y_k, which for k > 1 is the top-left corner of the k x k plateau around the peak (a peak at
(3, 3) is kept at (1, 1) for k = 5), and an all-zero channel votes for (0, 0).
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
    #: "peaks": positive channels' peaks on the unfiltered map; "first_index": literal rule per filtered map
    mask_rule: Literal["peaks", "first_index"] = "peaks"
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
            with torch.no_grad():  # identity: zeros with ones on the diagonal (no torch.eye, whose meta
                self.whiten.weight.zero_()  # implementation imports torch._dynamo: seconds in `validate`)
                self.whiten.weight.diagonal().fill_(1.0)
                self.whiten.bias.zero_()

    def pool(self, x: Tensor, mask: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self, x: Tensor) -> Tensor:
        """The descriptor ``(B, C)`` of features ``x`` ``(B, C, H, W)`` (scales, mask, pool, L2, whitening)."""
        pooled = []
        masked, rule = self.options.mask == "max", self.options.mask_rule
        peaks = max_mask(x, "peaks") if masked and rule == "peaks" else None
        for y in multiscale_filter(x, self.options.scales):
            if masked:
                m = peaks if peaks is not None else max_mask(y, "first_index")
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

