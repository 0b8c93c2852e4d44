"""``part_attention``: the one-shot M-map part attention of A2-Net and ExchNet.

The channel-reducing trunk of SEMICON's SEM (``trunk.0..4``, C -> C/4 -> C/16, stride 1) followed by ONE head
``Conv1x1 C/16 -> M (no bias) + BN(M) + ReLU`` that produces all M maps at once; there is no suppression
recursion. Every conv ``kaiming_normal_(fan_out, relu)``, BN weight 1 / bias 0; always randomly initialised
(the reference trainers never load weights into it).

``num_maps``: M, an int (4: ExchNet, the MindSpore A2-Net example and hashkit's ``a2net`` default) or
``"code_length"`` (M = L, as aassxun/DSH_Analysis trains A2-Net: 48 maps at 48 bits).

Reference names (aassxun/DSH_Analysis @ 44271bc ``models/A_2_net.py``, ``models/exchnet.py``)::

    attention.layer4.{0..4}.*      trunk.{0..4}.*
    attention.layer4.5.{0,1}.*     head.{0,1}.*

Tensor contract: input (B, C, h, w), C a multiple of 64 -> ``AttentionOutput(features = input unchanged,
maps (B, M, h, w) >= 0)``; maps named ``part1 .. partM``. 1,471,296 + 66·M parameters at C = 1024.
"""

from __future__ import annotations

from typing import Literal

import attrs
from torch import Tensor, nn

from hashkit.errors import ContractError
from hashkit.interfaces import Attention, AttentionOutput, BuildContext
from hashkit_plugins.attention._trunk import channel_reducing_trunk
from hashkit_plugins.backbones.resnet import init_weights
from hashkit_plugins.resnet_blocks import conv1x1


@attrs.frozen
class PartAttentionConfig:
    #: M, the number of part maps: an int, or "code_length" (M = L, DSH_Analysis' A2-Net trainer)
    num_maps: int | Literal["code_length"] = 4


class PartAttention(Attention):
    def __init__(self, channels: int, num_maps: int):
        super().__init__()
        if num_maps < 1:
            raise ContractError(f"part_attention needs at least one map, found num_maps = {num_maps}")
        self.in_channels = self.out_channels = channels
        self.num_maps = num_maps
        self.map_names = tuple(f"part{m + 1}" for m in range(num_maps))
        self.trunk = channel_reducing_trunk(channels, "part_attention")
        self.head = nn.Sequential(conv1x1(channels // 16, num_maps), nn.BatchNorm2d(num_maps), nn.ReLU(inplace=True))
        init_weights(self)

    def forward(self, x: Tensor) -> AttentionOutput:
        return AttentionOutput(features=x, maps=self.head(self.trunk(x)))


def build_part_attention(cfg: PartAttentionConfig, ctx: BuildContext) -> PartAttention:
    """A2-Net / ExchNet one-shot part attention: SEM's trunk and one M-map conv head (no suppression)."""
    channels = ctx.input_channels("part_attention")
    if cfg.num_maps == "code_length":
        if not ctx.code_length:
            raise ContractError("part_attention: num_maps = \"code_length\" needs a code length (recipe code_lengths)")
        num_maps = ctx.code_length
    else:
        num_maps = cfg.num_maps
    return PartAttention(channels, num_maps)


def _example():
    import torch

    from hashkit.interfaces import FeatureSpec
    from hashkit.testing import ComponentExample

    g = torch.Generator().manual_seed(0)
    return ComponentExample(ctx=BuildContext(in_spec=FeatureSpec(64, 16), code_length=6),
                            inputs=(torch.randn(2, 64, 6, 6, generator=g),))


def components(register):
    register("attention", "part_attention", build_part_attention, config=PartAttentionConfig, example=_example)
