"""Loss terms that switch on at a training round (A2-Net's reconstruction and decorrelation terms).

:class:`FromRound` is a mixin for a :class:`~hashkit.interfaces.Loss`: with ``from_round = r > 0`` it keeps the
current 0-based round in a buffer ``current_round`` (set by ``begin_epoch``, which the trainer calls before
every epoch, and restored with the checkpoint on resume) and the term is 0 before round r. ``from_round = 0``
is always on and adds no buffer (state dicts of the loss without a schedule are unchanged).
"""

from __future__ import annotations

import torch

from hashkit.interfaces import EpochStart, LossInputs


class FromRound:
    """Mixin: call ``self.schedule_from_round(r)`` in ``__init__`` and ``self.is_active()`` in ``forward``."""

    from_round: int = 0

    def schedule_from_round(self, from_round: int) -> None:
        self.from_round = from_round
        if from_round:
            self.register_buffer("current_round", torch.zeros((), dtype=torch.long))

    def begin_epoch(self, at: EpochStart) -> None:
        super().begin_epoch(at)
        if self.from_round:
            self.current_round.fill_(at.round)

    def is_active(self) -> bool:
        return not self.from_round or int(self.current_round) >= self.from_round


def zero_like(inputs: LossInputs) -> torch.Tensor:
    """A float32 zero on the batch's device (an inactive term)."""
    device = inputs.codes.device if inputs.codes is not None else inputs.labels.device
    return torch.zeros((), device=device)
