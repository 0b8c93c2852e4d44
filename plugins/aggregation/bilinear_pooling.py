"""``bap``: bilinear attention pooling (WS-DAN): one descriptor from M attention-weighted part features.

Input: ``features (B, C, H, W)`` and attention ``maps (B, M, H, W)`` (from e.g. ``attention_parts``).
``f_m = GAP(F ⊙ A_m)`` -> ``(B, M, C)``, flattened part-major (index ``m·C + c``) -> signed square root
-> L2 normalisation. Output ``{"bap": (B, M·C)}``; same in train and eval mode.
"""

from __future__ import annotations

from typing import Literal

import attrs
from einops import rearrange

from hashkit.errors import ContractError
from hashkit.interfaces import Aggregation, AggregationInput, AggregationOutput, BuildContext
from hashkit.testing import ComponentExample
from hashkit_plugins.aggregation._parts import part_features, signed_sqrt_l2


@attrs.frozen
class BAPConfig:
    #: spatial pooling of each attention-weighted map ("avg" = WS-DAN's BAP)
    pool: Literal["avg", "max"] = "avg"
    #: epsilon inside the signed square root
    eps: float = attrs.field(default=1e-12, validator=attrs.validators.gt(0.0))


class BilinearAttentionPooling(Aggregation):
    def __init__(self, cfg: BAPConfig, channels: int, num_maps: int):
        super().__init__()
        self.cfg = cfg
        self.num_maps = num_maps
        self.descriptor_dims = {"bap": num_maps * channels}

    def forward(self, inp: AggregationInput) -> AggregationOutput:
        parts = part_features(inp.features, inp.maps, self.cfg.pool)
        if parts.shape[1] != self.num_maps:
            raise ContractError(f"bap was built for {self.num_maps} attention maps, received {parts.shape[1]}")
        bap = signed_sqrt_l2(rearrange(parts, "b m c -> b (m c)"), self.cfg.eps)
        return AggregationOutput(descriptors={"bap": bap}, extras={"part_features": parts})


def build_bap(cfg: BAPConfig, ctx: BuildContext) -> BilinearAttentionPooling:
    """Bilinear attention pooling: part features, signed sqrt, L2 norm -> one (B, M·C) descriptor."""
    channels = ctx.input_channels("bap")
    if ctx.num_maps < 1:
        raise ContractError("bap needs attention maps: add an attention component with maps (e.g. attention_parts)")
    return BilinearAttentionPooling(cfg, channels, ctx.num_maps)


def maps_example() -> ComponentExample:
    """A tiny aggregation example with 4 attention maps (shared by the part-based aggregations)."""
    import torch

    from hashkit.interfaces import FeatureSpec

    g = torch.Generator().manual_seed(0)
    spec = FeatureSpec(8, 8)
    feats = torch.randn(3, 8, 5, 5, generator=g)
    return ComponentExample(
        ctx=BuildContext(in_spec=spec, stages={"stage3": spec}, num_maps=4, code_length=12, num_classes=5),
        inputs=(AggregationInput(features=feats, maps=torch.rand(3, 4, 5, 5, generator=g),
                                 stages={"stage3": feats}, image=torch.randn(3, 3, 40, 40, generator=g)),),
    )


def components(register):
    register("aggregation", "bap", build_bap, config=BAPConfig, example=maps_example)
