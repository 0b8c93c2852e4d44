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


class _SignSTE(torch.autograd.Function):
    """sign in the forward pass, the identity in the backward pass (no clipping)."""

    @staticmethod
    def forward(ctx, x: Tensor, plus_one: bool) -> Tensor:  # noqa: D401
        signed = torch.sign(x)
        return torch.where(signed == 0, torch.ones_like(signed), signed) if plus_one else signed

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad, None


def sign_ste(x: Tensor, zero_to: str = "plus_one") -> Tensor:
    """Straight-through sign (GreedyHash, Su et al. 2018): ``sign(x)`` forward, gradient passed unchanged.

    ``zero_to = "plus_one"`` maps exact zeros to +1 (hashkit's convention); ``"zero"`` keeps ``sign(0) = 0``
    as ``torch.sign`` (GreedyHash's reference code). Usable by any head (``activation = "sign_ste"``) or loss.
    """
    if zero_to not in ("plus_one", "zero"):
        raise ValueError(f"zero_to must be 'plus_one' or 'zero', found {zero_to!r}")
    return _SignSTE.apply(x, zero_to == "plus_one")
