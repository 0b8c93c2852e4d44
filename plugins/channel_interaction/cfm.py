"""``cfm``: DAHNet's channel-mixing module, a coordinate-attention gate followed by a convolutional MLP.

As aassxun/DSH_Analysis @ 44271bc (``models/DAHNET.py``: ``CFM`` -> ``ChannelMixerConv`` with ``CoordAtt`` and
``ConvMlp``) computes it, written in the map layout (the reference moves between (B, HW, C) tokens and maps;
the values are the same). For Z (B, C, h, w), hidden width 3C, gate width max(8, C / 4):

1. gate (``channel_att``): z_h(c, y) = mean_x Z, z_w(c, x) = mean_y Z, P = z_h * z_w (a product of the pooled
   maps); G = sigmoid(conv2(hswish(bn1(conv1(P))))) with 1x1 convs C -> C/4 -> C (with bias) and
   hswish(t) = t * relu6(t + 3) / 6; Z' = Z + Z * G;
2. MLP (``mlp``): U = BN(GELU(conv1(Z'))) (1x1 C -> 3C, bias; note the order conv, GELU, BN), dropout;
   V = BN(GELU(DW3x3(U) + U)) (depthwise 3x3 with bias); O = BN(conv2(V)) (1x1 3C -> C, bias), dropout;
3. CFM(Z) = O: **no residual** around the module (reference; ``residual = true`` returns Z + O).

GELU is the exact (erf) form; dropout (0.1) acts in train mode only.

``size``: the reference reshapes the MLP tokens with a hard-coded 7x7, so only 7x7 maps (224 px inputs to a
ResNet-50 layer4) work; ``size = 7`` (default) raises a clear error for other sizes, ``"dynamic"`` uses the
actual h, w.

Init (the reference's owner loop): every conv ``kaiming_normal_(fan_out, relu)`` (the depthwise one too),
conv biases PyTorch's default, BN weight 1 / bias 0.

Names: ``channel_att.{conv1, bn1, conv2}``, ``mlp.conv1.{0, 2}``, ``mlp.proj``, ``mlp.proj_bn``,
``mlp.conv2.{0, 1}`` (the reference's, without its ``channel_mixer.`` wrapper). 27,364,864 parameters at
C = 2048.

Tensor contract: (B, C, h, w) -> (B, C, h, w).
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch.nn.functional as F
from torch import Tensor, nn

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, ChannelInteraction
from hashkit_plugins.backbones.resnet import init_weights


@attrs.frozen
class CFMConfig:
    #: the only map side the reference accepts (7), or "dynamic" for any h, w
    size: int | Literal["dynamic"] = 7
    #: add Z around the module (the reference has no residual: the pretrained path passes through the random MLP)
    residual: bool = False
    #: MLP hidden width = expansion * C
    expansion: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    #: coordinate-gate width = max(8, C / gate_groups)
    gate_groups: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    dropout: float = attrs.field(default=0.1, validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)])


class CoordinateGate(nn.Module):
    """Z -> Z * sigmoid(conv2(hswish(bn1(conv1(mean_x Z * mean_y Z)))))."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, hidden, 1)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, z: Tensor) -> Tensor:
        p = z.mean(dim=3, keepdim=True) * z.mean(dim=2, keepdim=True)
        t = self.bn1(self.conv1(p))
        t = t * F.relu6(t + 3) / 6
        return z * self.conv2(t).sigmoid()


class ConvMLP(nn.Module):
    def __init__(self, channels: int, hidden: int, dropout: float):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.GELU(), nn.BatchNorm2d(hidden))
        self.proj = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.proj_act = nn.GELU()
        self.proj_bn = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Sequential(nn.Conv2d(hidden, channels, 1), nn.BatchNorm2d(channels))
        self.drop = nn.Dropout(dropout)

    def forward(self, z: Tensor) -> Tensor:
        u = self.drop(self.conv1(z))
        v = self.proj_bn(self.proj_act(self.proj(u) + u))
        return self.drop(self.conv2(v))


class CFM(ChannelInteraction):
    def __init__(self, cfg: CFMConfig, channels: int):
        super().__init__()
        self.cfg = cfg
        self.channels = channels
        self.channel_att = CoordinateGate(channels, max(8, channels // cfg.gate_groups))
        self.mlp = ConvMLP(channels, cfg.expansion * channels, cfg.dropout)
        init_weights(self)

    def forward(self, z: Tensor) -> Tensor:
        size = self.cfg.size
        if size != "dynamic" and tuple(z.shape[2:]) != (size, size):
            raise ContractError(f"cfm: the reference module only works on {size}x{size} maps (224 px input to a "
                                f"ResNet-50 layer4), found {z.shape[2]}x{z.shape[3]}; set size = \"dynamic\"")
        out = self.mlp(z + self.channel_att(z))
        return z + out if self.cfg.residual else out


def build_cfm(cfg: CFMConfig, ctx: BuildContext) -> CFM:
    """DAHNet's CFM: coordinate-attention gate (Z + Z*G) then a depthwise conv MLP, no outer residual."""
    return CFM(cfg, ctx.input_channels("cfm"))


def _example():
    from hashkit.testing import ComponentExample

    return ComponentExample(config={"size": "dynamic"})


def components(register):
    register("channel_interaction", "cfm", build_cfm, config=CFMConfig, example=_example)
