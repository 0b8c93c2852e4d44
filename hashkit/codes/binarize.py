"""Binarising relaxed codes to ±1."""

from __future__ import annotations

import torch
from torch import Tensor


def binarize(codes: Tensor, zero_to: str = "plus_one") -> Tensor:
    """``sign(codes)`` as float ±1; exact zeros become +1 (``zero_to="plus_one"``) or stay 0 (``"zero"``)."""
    signed = torch.sign(codes.detach()).float()
    if zero_to == "plus_one":
        signed = torch.where(signed == 0, torch.ones_like(signed), signed)
    elif zero_to != "zero":
        raise ValueError(f"zero_to must be 'plus_one' or 'zero', found {zero_to!r}")
    return signed
