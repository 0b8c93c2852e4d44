"""Loss: named model outputs, labels and protocol state -> a scalar plus named parts.

Tensor contract
---------------
- input :class:`LossInputs` (fields may be ``None`` when the model does not produce them):
  - ``codes``: ``(B, L)`` relaxed codes in ``[-1, 1]``; ``logits``: ``(B, L)`` pre-activation;
  - ``descriptor``: ``(B, D)`` real-valued global descriptor (concatenated aggregation descriptors);
  - ``class_logits``: ``(B, C)``;
  - ``labels``: ``(B, C)`` float multi-hot (single-label data is one-hot);
  - ``indices``: ``(B,)`` int64 indices of the samples in the training split;
  - ``extras``: named model extras (attention and aggregation extras, e.g. ``"suppressed_codes"``);
  - ``protocol``: named protocol state for this batch (e.g. ADSH's ``"B"``, ``"S"``, ``"omega"``).
- ``requires`` names the fields (or ``extras.NAME`` / ``protocol.NAME``) the loss reads; the builder checks
  them against what the model and protocol provide and names both components when one is missing.
- output :class:`LossResult`: ``value`` is a 0-dim float32 tensor (compute in float32 even under
  autocast); ``parts`` are 0-dim tensors for logging (detached by the caller).
"""

from __future__ import annotations

from typing import Any

import attrs
from torch import Tensor, nn


@attrs.define
class LossInputs:
    codes: Tensor | None = None
    logits: Tensor | None = None
    descriptor: Tensor | None = None
    class_logits: Tensor | None = None
    labels: Tensor | None = None
    indices: Tensor | None = None
    extras: dict[str, Any] = attrs.field(factory=dict)
    protocol: dict[str, Any] = attrs.field(factory=dict)


@attrs.define
class LossResult:
    value: Tensor
    parts: dict[str, Tensor] = attrs.field(factory=dict)


class Loss(nn.Module):
    """Base class of losses. Losses with parameters (proxies, centres) hold them as submodules."""

    requires: tuple[str, ...] = ("codes", "labels")

    def forward(self, inputs: LossInputs) -> LossResult:  # pragma: no cover - abstract
        raise NotImplementedError
