"""``attention_parts``: M part attention maps from a 1x1 conv + BN + ReLU (WS-DAN / GDF-Net).

Input ``(B, C, H, W)``; output ``AttentionOutput(features = the input unchanged (B, C, H, W),
maps (B, M, H, W) >= 0)``. The block is Inception's ``BasicConv2d`` (conv without bias, BatchNorm with
eps 0.001, ReLU), as in the WS-DAN and GDF-Net code. Same shapes in train and eval mode (BatchNorm uses
batch statistics in train mode).
"""

from __future__ import annotations

import attrs
from torch import Tensor, nn

from hashkit.interfaces import Attention, AttentionOutput, BuildContext


@attrs.frozen
class AttentionPartsConfig:
    #: M, the number of part attention maps (GDF-Net and WS-DAN use 32)
    num_maps: int = attrs.field(default=32, validator=attrs.validators.ge(1))
    #: BatchNorm epsilon (Inception's BasicConv2d uses 0.001)
    bn_eps: float = attrs.field(default=1e-3, validator=attrs.validators.gt(0.0))


class AttentionParts(Attention):
    """1x1 conv (C -> M, no bias) + BN + ReLU; see the module docstring."""

    def __init__(self, cfg: AttentionPartsConfig, channels: int):
        super().__init__()
        self.in_channels = self.out_channels = channels
        self.num_maps = cfg.num_maps
        self.map_names = tuple(f"part{i}" for i in range(cfg.num_maps))
        self.conv = nn.Conv2d(channels, cfg.num_maps, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(cfg.num_maps, eps=cfg.bn_eps)

    def forward(self, x: Tensor) -> AttentionOutput:
        maps = self.bn(self.conv(x)).relu()
        return AttentionOutput(features=x, maps=maps)


def build_attention_parts(cfg: AttentionPartsConfig, ctx: BuildContext) -> AttentionParts:
    """M part attention maps (1x1 conv + BN + ReLU), features passed through unchanged."""
    return AttentionParts(cfg, ctx.input_channels("attention_parts"))


def components(register):
    register("attention", "attention_parts", build_attention_parts, config=AttentionPartsConfig)
