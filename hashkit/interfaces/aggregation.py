"""Aggregation: feature maps (+ attention maps) -> named global descriptors.

Tensor contract
---------------
- input :class:`AggregationInput`:
  - ``features``: ``(B, C, H, W)``, the tapped backbone stage after the attention cascade;
  - ``maps``: ``(B, K, H, W)`` concatenated attention maps, or ``None``;
  - ``stages``: every tapped backbone stage by name (multi-level aggregations read several);
  - ``image``: the input batch ``(B, 3, H_in, W_in)`` (for crops or views), may be ignored;
  - ``context``: in training, the training protocol's state for this batch (``TrainingProtocol.batch_state``,
    the same dict the losses receive as ``LossInputs.protocol``, e.g. ExchNet's class anchors); empty when
    encoding. An aggregation that reads it must behave sensibly without it (eval mode, encoding).
- output :class:`AggregationOutput`:
  - ``descriptors``: ordered ``{name: (B, D_name)}`` float; names and dims equal ``descriptor_dims``,
    declared at build time so the hash head can be checked before any forward pass;
  - ``extras``: named tensors for losses or visualisation (e.g. part features for a centre loss).
- Same shapes in train and eval mode.
"""

from __future__ import annotations

from typing import Any

import attrs
from torch import Tensor, nn


@attrs.define
class AggregationInput:
    features: Tensor
    maps: Tensor | None = None
    stages: dict[str, Tensor] = attrs.field(factory=dict)
    image: Tensor | None = None
    context: dict[str, Any] = attrs.field(factory=dict)


@attrs.define
class AggregationOutput:
    descriptors: dict[str, Tensor]
    extras: dict[str, Any] = attrs.field(factory=dict)


class Aggregation(nn.Module):
    """Base class of aggregations; subclasses set ``descriptor_dims`` (ordered) in ``__init__``."""

    descriptor_dims: dict[str, int]

    def forward(self, inp: AggregationInput) -> AggregationOutput:  # pragma: no cover - abstract
        raise NotImplementedError
