"""Losses that switch on at a training round (A2-Net's reconstruction and decorrelation terms).

A loss with ``from_round = r > 0`` needs the protocol's ``round`` (the ``adsh`` protocol provides the 0-based
round in every batch state) and contributes 0 before round r. ``from_round = 0`` is always on and needs nothing.
"""

from __future__ import annotations

import torch

from hashkit.errors import ContractError
from hashkit.interfaces import LossInputs


def round_requires(from_round: int) -> tuple[str, ...]:
    """The extra ``requires`` entry of a loss that starts at ``from_round``."""
    return ("protocol.round",) if from_round else ()


def is_active(inputs: LossInputs, from_round: int, loss_name: str) -> bool:
    """Whether the batch's round has reached ``from_round``; a clear error when the protocol gives no round."""
    if not from_round:
        return True
    if "round" not in inputs.protocol:
        raise ContractError(f"loss {loss_name!r}: from_round = {from_round} needs the protocol's round "
                            "(e.g. the adsh protocol), which this batch state lacks")
    return int(inputs.protocol["round"]) >= from_round


def zero_like(inputs: LossInputs) -> torch.Tensor:
    """A float32 zero on the batch's device (an inactive term)."""
    device = inputs.codes.device if inputs.codes is not None else inputs.labels.device
    return torch.zeros((), device=device)
