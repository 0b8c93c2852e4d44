"""Part features from a feature map and attention maps (WS-DAN bilinear attention pooling and GDF-Net's
graph nodes), and the signed-square-root + L2 normalisation both use.

- :func:`part_features`: ``features (B, C, H, W)``, ``maps (B, M, H, W)`` -> ``(B, M, C)`` with
  ``f_m = pool_hw(F ⊙ A_m)``: ``"avg"`` is BAP's ``einsum / (H·W)``, ``"max"`` GDF-Net's GMP node features.
  Maps of another spatial size are resized bilinearly to the features first (as WS-DAN does).
- :func:`signed_sqrt_l2`: ``x <- sign(x)·sqrt(|x| + eps)`` then L2 normalisation over the last dim.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from hashkit.errors import ContractError


def part_features(features: Tensor, maps: Tensor, pool: Literal["avg", "max"] = "avg") -> Tensor:
    """``(B, C, H, W), (B, M, H, W) -> (B, M, C)`` pooled attention-weighted part features."""
    if maps is None:
        raise ContractError("part pooling needs attention maps: add an attention component with maps "
                            "(e.g. attention_parts) to [[model.attention]]")
    if maps.shape[-2:] != features.shape[-2:]:
        maps = F.interpolate(maps, size=features.shape[-2:], mode="bilinear", align_corners=False)
    if pool == "avg":
        h, w = features.shape[-2:]
        return torch.einsum("bmhw,bchw->bmc", maps, features) / (h * w)
    if pool == "max":
        return (maps.unsqueeze(2) * features.unsqueeze(1)).amax(dim=(-2, -1))
    raise ValueError(f"pool must be 'avg' or 'max', found {pool!r}")


def signed_sqrt_l2(x: Tensor, eps: float = 1e-12) -> Tensor:
    """``sign(x)·sqrt(|x| + eps)``, then L2-normalised along the last dimension."""
    x = torch.sign(x) * torch.sqrt(x.abs() + eps)
    return F.normalize(x, dim=-1)
