"""``multiscale``: DAGF's scale filters, stride-1 "same" max filters of several kernel sizes.

[inferred design] For each kernel size ``k`` (odd; default 1, 3, 5): ``Y_k = MaxPool(k, stride 1,
padding k // 2)(X)``; ``k = 1`` is the identity. :func:`multiscale_filter` is the pre-step the global
descriptor aggregations (``gem``, ``spoc``, ``rmac``: option ``scales``) apply before pooling, where each
scale is pooled separately and the descriptors are averaged. As an attention component in the cascade the
scales are combined into one map:

- ``combine = "concat"`` (default): ``(B, S·C, H, W)``, scale-major (channels ``[s·C, (s+1)·C)`` are scale
  ``s``); follow it with ``max_mask`` with ``groups = S`` to mask each scale separately;
- ``"mean"`` / ``"max"``: the element-wise mean / max of the scales, ``(B, C, H, W)``.

No maps. Same in train and eval; differentiable (max-pool gradients).
"""

from __future__ import annotations

from typing import Literal, Sequence

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor

from hashkit.errors import ContractError
from hashkit.interfaces import Attention, AttentionOutput, BuildContext


def validate_odd_kernels(inst, attribute, value):
    if not value or any(k < 1 or k % 2 == 0 for k in value):
        raise ValueError(f"'{attribute.name}' must be a non-empty list of odd kernel sizes >= 1, found {list(value)}")


def multiscale_filter(x: Tensor, kernels: Sequence[int]) -> list[Tensor]:
    """``[Y_k]`` for each kernel size: ``(B, C, H, W)`` stride-1 same-size max filters of ``x``."""
    out = []
    for k in kernels:
        if k % 2 == 0:
            raise ContractError(f"multiscale kernel sizes must be odd (same-size output), found {k}")
        out.append(x if k == 1 else F.max_pool2d(x, kernel_size=k, stride=1, padding=k // 2))
    return out


@attrs.frozen
class MultiscaleConfig:
    #: odd max-filter kernel sizes (1 = identity)
    kernels: tuple[int, ...] = attrs.field(default=(1, 3, 5), validator=validate_odd_kernels)
    #: how the scales form one feature map: concatenated on channels, or their mean / max
    combine: Literal["concat", "mean", "max"] = "concat"


class Multiscale(Attention):
    """Max filters at several sizes, combined on channels (concat) or element-wise."""

    def __init__(self, cfg: MultiscaleConfig, channels: int):
        super().__init__()
        self.cfg = cfg
        self.in_channels = channels
        self.out_channels = channels * len(cfg.kernels) if cfg.combine == "concat" else channels

    def forward(self, x: Tensor) -> AttentionOutput:
        ys = multiscale_filter(x, self.cfg.kernels)
        if self.cfg.combine == "concat":
            out = torch.cat(ys, dim=1)
        elif self.cfg.combine == "mean":
            out = torch.stack(ys).mean(dim=0)
        else:
            out = torch.stack(ys).amax(dim=0)
        return AttentionOutput(features=out)


def build_multiscale(cfg: MultiscaleConfig, ctx: BuildContext) -> Multiscale:
    """DAGF scale filters: stride-1 max filters of several sizes (kernels 1, 3, 5)."""
    return Multiscale(cfg, ctx.input_channels("multiscale"))


def components(register):
    register("attention", "multiscale", build_multiscale, config=MultiscaleConfig)
