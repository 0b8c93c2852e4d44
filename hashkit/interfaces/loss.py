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
  autocast; float64 inputs may stay float64); ``parts`` are 0-dim tensors for logging (detached by the caller).

State and schedules
-------------------
A loss may keep state (a memory bank of training codes, class centres, a continuation scale): it lives in
buffers and parameters, so checkpoints save it under ``losses.*`` and a resumed run restores it. Schedules
that belong to a method (a scale per epoch, a closed-form update of auxiliary variables before each epoch)
go in :meth:`Loss.begin_epoch`, which the trainer calls for every loss before the first batch of every
epoch, with :class:`EpochStart` saying where training stands.
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


@attrs.frozen
class EpochStart:
    """Where training stands when an epoch begins (the argument of :meth:`Loss.begin_epoch`).

    - ``round``: 0-based round (an outer iteration of the protocol; with ``pointwise`` a round is an epoch);
    - ``epoch_in_round``: 0-based epoch within the round;
    - ``epoch``: 0-based epoch over the whole run, ``round * epochs_per_round + epoch_in_round``;
    - ``epochs_per_round``, ``num_rounds``: the protocol's loop sizes.
    """

    round: int
    epoch_in_round: int
    epoch: int
    epochs_per_round: int = 1
    num_rounds: int = 1

    @classmethod
    def at(cls, round_index: int, epoch_in_round: int, epochs_per_round: int = 1, num_rounds: int = 1) -> "EpochStart":
        return cls(round_index, epoch_in_round, round_index * epochs_per_round + epoch_in_round, epochs_per_round,
                   num_rounds)


@attrs.define
class LossResult:
    value: Tensor
    parts: dict[str, Tensor] = attrs.field(factory=dict)


class Loss(nn.Module):
    """Base class of losses. Losses with parameters (proxies, centres) hold them as submodules."""

    requires: tuple[str, ...] = ("codes", "labels")

    def forward(self, inputs: LossInputs) -> LossResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def begin_epoch(self, at: EpochStart) -> None:
        """Called by the trainer before the first batch of every epoch (once: a run resumed in the middle of
        an epoch does not call it again for that epoch, so whatever it changes must be in buffers or
        parameters, which the checkpoint restores). Default: nothing."""
