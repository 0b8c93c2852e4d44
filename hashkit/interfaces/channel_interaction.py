"""Channel interaction: ``(B, C, H, W) -> (B, C, H, W)``, mixing information across channels.

Tensor contract
---------------
- input and output have the same shape and dtype; ``channels == ctx.in_spec.channels``.
- Built per insertion point: an aggregation that inserts the recipe's channel interaction after several
  blocks calls the factory once per point (ICON after layer4 blocks 1 and 2 gives two weight sets).
"""

from __future__ import annotations

from torch import Tensor, nn


class ChannelInteraction(nn.Module):
    """Base class of channel interaction components; subclasses set ``channels``."""

    channels: int

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
