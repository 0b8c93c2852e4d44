"""``channel_attention``: DAGF's trainable channel weighting vector (not input-dependent).

[paper] "a vector with trainable parameters to weight the importance of each feature map".
[inferred design] weights ``a = 2 · sigmoid(v)`` with ``v`` initialised to 0 (so ``a = 1`` at start), or
``a = softplus(v)`` with ``v₀ = log(e − 1)`` (also ``a = 1``); ``X_c = X ⊙ a`` broadcast over H and W.

Tensor contract: ``(B, C, H, W)`` -> features ``(B, C, H, W)``; no maps. Same in train and eval.
"""

from __future__ import annotations

import math
from typing import Literal

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hashkit.interfaces import Attention, AttentionOutput, BuildContext


@attrs.frozen
class ChannelAttentionConfig:
    #: "sigmoid2": a = 2 sigmoid(v), v0 = 0; "softplus": a = softplus(v), v0 = log(e - 1)
    weight: Literal["sigmoid2", "softplus"] = "sigmoid2"


class ChannelAttention(Attention):
    """Multiplies each channel by a learned, image-independent positive weight."""

    def __init__(self, cfg: ChannelAttentionConfig, channels: int):
        super().__init__()
        self.cfg = cfg
        self.in_channels = self.out_channels = channels
        init = 0.0 if cfg.weight == "sigmoid2" else math.log(math.e - 1.0)
        self.v = nn.Parameter(torch.full((channels,), init))

    def weights(self) -> Tensor:
        """The channel weights ``a`` ``(C,)``, all positive."""
        return 2 * torch.sigmoid(self.v) if self.cfg.weight == "sigmoid2" else F.softplus(self.v)

    def forward(self, x: Tensor) -> AttentionOutput:
        a = self.weights().to(x.dtype)
        return AttentionOutput(features=x * a[None, :, None, None])


def build_channel_attention(cfg: ChannelAttentionConfig, ctx: BuildContext) -> ChannelAttention:
    """DAGF channel attention: a trainable per-channel weight vector (1 at initialisation)."""
    return ChannelAttention(cfg, ctx.input_channels("channel_attention"))


def components(register):
    register("attention", "channel_attention", build_channel_attention, config=ChannelAttentionConfig)
