"""Reading the relaxed codes a code loss works on: ``codes`` (bounded, e.g. tanh) or raw ``logits``.

Losses compute in float32 (half-precision inputs under autocast are promoted); float64 inputs stay float64,
so a loss can be checked against a float64 reference.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from hashkit.errors import ContractError
from hashkit.interfaces import LossInputs

CodeInput = Literal["codes", "logits"]


def at_least_float32(x: Tensor) -> Tensor:
    """``x`` as float32, or unchanged when it is float64."""
    return x if x.dtype == torch.float64 else x.float()


def code_tensor(inputs: LossInputs, source: CodeInput, loss_name: str) -> Tensor:
    """``inputs.codes`` or ``inputs.logits`` as float32 (float64 kept) ``(B, L)``; a clear error when absent."""
    value = getattr(inputs, source)
    if value is None:
        raise ContractError(f"loss {loss_name!r} reads {source!r} but the model produced none (no hash head?)")
    return at_least_float32(value)


def label_tensor(inputs: LossInputs, like: Tensor, loss_name: str) -> Tensor:
    """``inputs.labels`` ``(B, C)`` in the dtype and on the device of ``like``; a clear error when absent."""
    if inputs.labels is None:
        raise ContractError(f"loss {loss_name!r} needs labels")
    return inputs.labels.to(device=like.device, dtype=like.dtype)
