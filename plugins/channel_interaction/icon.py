"""``icon``: SEMICON's interactive channel transformation (``ChannelTransformer`` in
``models/SEMICON.py`` of aassxun/SEMICON @ 885cbfe0).

Channels are tokens and their N = h*w spatial values are the token features. With C channels, G groups
("heads") = max(C / group_width, min_groups) and D = C / G channels per group (C = 2048: G = 32, D = 64):

1. intra-group: ``t = qkv(x)`` (1x1 conv C -> 3C, ``groups=G``, bias), read *literally* as (3, G, D, N)
   (output channel o -> (o // C, (o % C) // D, o % D); this split does not line up with the conv's groups);
   ``a = softmax(ssqrt(q k^T / sqrt(D)))`` (B, G, D, D); ``x1 = a v`` as (B, C, h, w) ``+ x``;
2. channel shuffle: (G, D) -> (D, G), new channel d*G + g holds old channel g*D + d;
   ``y = ReLU(BN(x1_shuffled))``;
3. inter-group: ``t2 = qkv2(y)`` (``groups=D``) read as (3, D, G, N); ``a2 = softmax(ssqrt(q k^T / sqrt(G)))``
   (B, D, G, G); ``o = a2 v`` back to (B, C, h, w) in g*D + d order;
4. ``out = o + y``. y is the post-ReLU tensor still in shuffled order (official; ``residual = "aligned"``
   un-shuffles y first).

``ssqrt(a) = sign(a) * sqrt(|a| + eps)``, eps = 1e-5. Parameters: ``qkv`` (3C, D, 1, 1) + bias, ``qkv2``
(3C, G, 1, 1) + bias, ``norm`` BN(C); conv weights ``kaiming_normal_(fan_out, relu)``, conv biases PyTorch's
default, BN 1 / 0.

Tensor contract: (B, C, h, w) -> (B, C, h, w), same dtype.
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
from einops import rearrange
from torch import Tensor, nn

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, ChannelInteraction


@attrs.frozen
class ICONConfig:
    #: add the final residual in the official shuffled order, or un-shuffle it first ("aligned")
    residual: Literal["official", "aligned"] = "official"
    #: target channels per group: G = max(C / group_width, min_groups)
    group_width: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    min_groups: int = attrs.field(default=16, validator=attrs.validators.ge(1))
    #: inside the signed square root
    eps: float = attrs.field(default=1e-5, validator=attrs.validators.ge(0.0))


def signed_sqrt(a: Tensor, eps: float) -> Tensor:
    return torch.sign(a) * torch.sqrt(torch.abs(a) + eps)


class ICON(ChannelInteraction):
    def __init__(self, cfg: ICONConfig, channels: int):
        super().__init__()
        groups = max(channels // cfg.group_width, cfg.min_groups)
        if channels % groups:
            raise ContractError(f"icon: {channels} channels do not split into {groups} groups "
                                f"(G = max(C / {cfg.group_width}, {cfg.min_groups}))")
        self.cfg = cfg
        self.channels = channels
        self.groups = groups
        self.group_size = channels // groups
        self.norm = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1, groups=groups)
        self.qkv2 = nn.Conv2d(channels, 3 * channels, 1, groups=self.group_size)
        for conv in (self.qkv, self.qkv2):
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[2:]
        g, d = self.groups, self.group_size
        q, k, v = rearrange(self.qkv(x), "b (s g d) h w -> s b g d (h w)", s=3, g=g)
        a = (q @ k.transpose(-2, -1)) * d**-0.5
        a = signed_sqrt(a, self.cfg.eps).softmax(dim=-1)
        x1 = rearrange(a @ v, "b g d (h w) -> b (g d) h w", h=h) + x
        shuffled = rearrange(x1, "b (g d) h w -> b (d g) h w", g=g)
        y = self.relu(self.norm(shuffled))
        q, k, v = rearrange(self.qkv2(y), "b (s d g) h w -> s b d g (h w)", s=3, d=d)
        a2 = (q @ k.transpose(-2, -1)) * g**-0.5
        a2 = signed_sqrt(a2, self.cfg.eps).softmax(dim=-1)
        o = rearrange(a2 @ v, "b d g (h w) -> b (g d) h w", h=h, w=w)
        if self.cfg.residual == "aligned":
            y = rearrange(y, "b (d g) h w -> b (g d) h w", g=g)
        return o + y


def build_icon(cfg: ICONConfig, ctx: BuildContext) -> ICON:
    """SEMICON's two-step grouped channel attention (ICON), groups derived from the channel count."""
    return ICON(cfg, ctx.input_channels("icon"))


def components(register):
    register("channel_interaction", "icon", build_icon, config=ICONConfig)
