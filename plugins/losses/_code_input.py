"""Reading the relaxed codes a code loss works on: ``codes`` (bounded, e.g. tanh) or raw ``logits``."""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from hashkit.errors import ContractError
from hashkit.interfaces import LossInputs

CodeInput = Literal["codes", "logits"]


def code_tensor(inputs: LossInputs, source: CodeInput, loss_name: str) -> Tensor:
    """``inputs.codes`` or ``inputs.logits`` as float32 ``(B, L)``; a clear error when absent."""
    value = getattr(inputs, source)
    if value is None:
        raise ContractError(f"loss {loss_name!r} reads {source!r} but the model produced none (no hash head?)")
    return value.float()
