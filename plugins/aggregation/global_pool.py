"""``gap`` and ``gmp``: global average / max pooling of the tapped feature map into one descriptor.

Input ``(B, C, H, W)`` -> descriptor ``{"global": (B, C)}``, optionally L2-normalised.
"""

from __future__ import annotations

import attrs
import torch.nn.functional as F

from hashkit.interfaces import Aggregation, AggregationInput, AggregationOutput, BuildContext


@attrs.frozen
class GlobalPoolConfig:
    #: L2-normalise the pooled descriptor
    normalize: bool = False


class GlobalPool(Aggregation):
    def __init__(self, cfg: GlobalPoolConfig, channels: int, mode: str):
        super().__init__()
        self.cfg = cfg
        self.mode = mode
        self.descriptor_dims = {"global": channels}

    def forward(self, inp: AggregationInput) -> AggregationOutput:
        x = inp.features
        pooled = x.mean(dim=(2, 3)) if self.mode == "avg" else x.amax(dim=(2, 3))
        if self.cfg.normalize:
            pooled = F.normalize(pooled, dim=1)
        return AggregationOutput(descriptors={"global": pooled})



def build_gap(cfg: GlobalPoolConfig, ctx: BuildContext) -> GlobalPool:
    """Global average pooling (GAP) into one descriptor."""
    return GlobalPool(cfg, ctx.input_channels("gap"), "avg")


def build_gmp(cfg: GlobalPoolConfig, ctx: BuildContext) -> GlobalPool:
    """Global max pooling (GMP) into one descriptor."""
    return GlobalPool(cfg, ctx.input_channels("gmp"), "max")


def components(register):
    register("aggregation", "gap", build_gap, config=GlobalPoolConfig)
    register("aggregation", "gmp", build_gmp, config=GlobalPoolConfig)
