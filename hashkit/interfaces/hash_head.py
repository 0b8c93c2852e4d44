"""Hash head: named descriptors -> continuous codes (and optional class logits).

Tensor contract
---------------
- input: ``{name: (B, D_name)}`` with names/dims equal to ``ctx.descriptor_dims``.
- output :class:`HeadOutput`:
  - ``logits``: ``(B, L)`` pre-activation values;
  - ``codes``: ``(B, L)`` relaxed codes in ``[-1, 1]`` (e.g. ``tanh(logits)``); binary codes are
    ``sign(codes)`` with ``sign(0) = +1`` (see :func:`hashkit.codes.binarize`);
  - ``class_logits``: ``(B, num_classes)`` or ``None`` when the head has no classifier;
  - ``extras``: named tensors for losses (e.g. A2-Net's tied-weight reconstruction of the descriptor, DAHNet's
    per-part class logits), merged into the model's extras; may be empty.
- ``code_length`` equals ``ctx.code_length``; ``num_classes`` is 0 without a classifier.
- Same in train and eval mode.
"""

from __future__ import annotations

from typing import Any

import attrs
from torch import Tensor, nn


@attrs.define
class HeadOutput:
    logits: Tensor
    codes: Tensor
    class_logits: Tensor | None = None
    extras: dict[str, Any] = attrs.field(factory=dict)


class HashHead(nn.Module):
    """Base class of hash heads; subclasses set ``code_length`` and ``num_classes``."""

    code_length: int
    num_classes: int = 0

    def forward(self, descriptors: dict[str, Tensor]) -> HeadOutput:  # pragma: no cover - abstract
        raise NotImplementedError
