"""``spatial_attention``: DAGF's region evaluator, a per-image 1x1 dynamic filter scoring each location.

[inferred design, docs/methods/dagf.md] The abstract says the module "captures the global information and
models the relation between channels as a region evaluator". hashkit builds it as::

    g = GAP(X)                              (B, C)
    e = W2 · ReLU(W1 · g)                   W1: C/r x C, W2: C x C/r   (SE-style, r = 16)
    s_hw = sigmoid(e · x_hw / sqrt(C))      (B, 1, H, W)   the filter's weights come from the image
    X_s = X ⊙ (1 + s)  ("residual", default)   or   X ⊙ s  ("plain")

Tensor contract: input ``(B, C, H, W)`` -> features ``(B, C, H, W)`` (same dtype) and, with
``emit_map = true``, ``maps`` = ``s`` ``(B, 1, H, W)`` in ``[0, 1]``. Same computation in train and eval.
"""

from __future__ import annotations

import math
from typing import Literal

import attrs
import torch
from torch import Tensor, nn

from hashkit.interfaces import Attention, AttentionOutput, BuildContext


@attrs.frozen
class SpatialAttentionConfig:
    #: channel reduction of the evaluator's bottleneck (hidden = max(1, C // reduction))
    reduction: int = attrs.field(default=16, validator=attrs.validators.ge(1))
    #: "residual": X * (1 + s); "plain": X * s
    form: Literal["residual", "plain"] = "residual"
    #: hand the score map s to the aggregation / overlays as one attention map
    emit_map: bool = True


class SpatialAttention(Attention):
    """Region evaluator: scores every location with an image-conditioned 1x1 filter."""

    map_names = ("spatial",)

    def __init__(self, cfg: SpatialAttentionConfig, channels: int):
        super().__init__()
        self.cfg = cfg
        self.in_channels = self.out_channels = channels
        self.num_maps = 1 if cfg.emit_map else 0
        hidden = max(1, channels // cfg.reduction)
        self.evaluator = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))

    def scores(self, x: Tensor) -> Tensor:
        """``s`` ``(B, 1, H, W)`` in ``[0, 1]`` for features ``x`` ``(B, C, H, W)``."""
        e = self.evaluator(x.mean(dim=(2, 3)))
        logits = torch.einsum("bc,bchw->bhw", e, x) / math.sqrt(x.shape[1])
        return torch.sigmoid(logits).unsqueeze(1)

    def forward(self, x: Tensor) -> AttentionOutput:
        s = self.scores(x)
        features = x * (1 + s) if self.cfg.form == "residual" else x * s
        return AttentionOutput(features=features, maps=s if self.num_maps else None)


def build_spatial_attention(cfg: SpatialAttentionConfig, ctx: BuildContext) -> SpatialAttention:
    """DAGF spatial attention: an SE-style region evaluator reweighting every location."""
    return SpatialAttention(cfg, ctx.input_channels("spatial_attention"))


def components(register):
    register("attention", "spatial_attention", build_spatial_attention, config=SpatialAttentionConfig)
