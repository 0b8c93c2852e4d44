"""Attention: a feature map -> a reweighted feature map and (optionally) K spatial attention maps.

Tensor contract
---------------
- input: ``(B, C, H, W)`` with ``C == ctx.in_spec.channels``.
- output :class:`AttentionOutput`:
  - ``features``: ``(B, out_channels, H, W)``, the map handed to the next attention in the cascade and
    finally to the aggregation (SEM returns its input unchanged; spatial/channel attention reweight it);
  - ``maps``: ``(B, num_maps, H, W)`` float, non-negative, or ``None`` when ``num_maps == 0``. Maps of a
    cascade are concatenated in order and handed to the aggregation (SEMICON's local branches, WS-DAN's
    bilinear pooling) and to ``hashkit attention`` for overlays;
  - ``extras``: named tensors for losses (e.g. a background-suppressed view), may be empty. Two keys are
    read by the model in training: ``"views"`` ``{name: (B, 3, H_in, W_in)}`` images to encode, and
    ``"feature_views"`` ``{name: (features, maps)}``, this attention's output for another view of the same
    images, run through the rest of the model (:mod:`hashkit.model.hashing_model`).
- Same shapes in train and eval; a component may behave differently (e.g. running statistics).
"""

from __future__ import annotations

from typing import Any

import attrs
from torch import Tensor, nn


@attrs.define
class AttentionOutput:
    features: Tensor
    maps: Tensor | None = None
    extras: dict[str, Any] = attrs.field(factory=dict)


class Attention(nn.Module):
    """Base class of attention components.

    Subclasses set ``in_channels``, ``out_channels`` and ``num_maps`` in ``__init__`` and implement
    ``forward(x) -> AttentionOutput``. ``map_names`` (optional) labels the maps for visualisation.
    """

    in_channels: int
    out_channels: int
    num_maps: int = 0
    map_names: tuple[str, ...] = ()

    def forward(self, x: Tensor) -> AttentionOutput:  # pragma: no cover - abstract
        raise NotImplementedError
