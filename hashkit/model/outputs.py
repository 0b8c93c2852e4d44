"""ModelOutput: everything a :class:`~hashkit.model.hashing_model.HashingModel` forward returns."""

from __future__ import annotations

from typing import Any

import attrs
from torch import Tensor


@attrs.define
class ModelOutput:
    """Outputs of one forward pass (same fields in train and eval mode).

    - ``codes``: ``(B, L)`` relaxed codes in ``[-1, 1]``, ``None`` for a real-valued model (no hash head);
    - ``logits``: ``(B, L)`` pre-activation values of the hash head, or ``None``;
    - ``descriptor``: ``(B, D)`` the aggregation descriptors concatenated in order (real-valued retrieval);
    - ``descriptors``: the aggregation descriptors by name;
    - ``class_logits``: ``(B, C)`` or ``None``;
    - ``maps``: ``(B, K, h, w)`` concatenated attention maps, or ``None``;
    - ``extras``: attention and aggregation extras by name (for losses and visualisation).
    """

    descriptor: Tensor
    descriptors: dict[str, Tensor]
    codes: Tensor | None = None
    logits: Tensor | None = None
    class_logits: Tensor | None = None
    maps: Tensor | None = None
    extras: dict[str, Any] = attrs.field(factory=dict)
