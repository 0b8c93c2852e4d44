"""Pairwise pieces shared by the generic deep-hashing losses (DPSH family, DSH, HashNet, DFH, ...).

- ``share_label(a, b)``: ``s_ij = 1[a_iᵀ b_j > 0]`` for multi-hot label rows (one-hot: same class);
- ``cosine_label_similarity(a, b)``: IDHN's soft similarity ``a_iᵀb_j / (‖a_i‖‖b_j‖ + eps)``;
- ``pair_nll(θ, s)``: the pairwise negative log-likelihood ``log(1 + e^θ) − sθ`` of DPSH, computed stably as
  ``log(1 + e^{−|θ|}) + max(θ, 0) − sθ`` (equal wherever the naive form is finite);
- ``squared_distances(a, b)``: ``‖a_i − b_j‖²`` as the references compute it (broadcast difference);
- ``pairwise_likelihood(u, y, U, Y, scale)``: DPSH's ``mean ℓ(scale · uUᵀ, s)`` over all pairs.
"""

from __future__ import annotations

import torch
from torch import Tensor


def share_label(a: Tensor, b: Tensor) -> Tensor:
    """``(n, C), (m, C) -> (n, m)`` float: 1 where the rows share a label."""
    return (a @ b.t() > 0).to(a.dtype)


def cosine_label_similarity(a: Tensor, b: Tensor, eps: float = 1e-5) -> Tensor:
    """``(n, C), (m, C) -> (n, m)``: ``a_iᵀb_j / (‖a_i‖·‖b_j‖ + eps)`` (1 for identical one-hot rows, up to eps)."""
    norms = a.norm(dim=1, keepdim=True) @ b.norm(dim=1, keepdim=True).t()
    return (a @ b.t()) / (norms + eps)


def pair_nll(theta: Tensor, s: Tensor) -> Tensor:
    """Elementwise ``log(1 + exp(θ)) − s·θ``, numerically stable."""
    return torch.log1p(torch.exp(-theta.abs())) + theta.clamp(min=0) - s * theta


def squared_distances(a: Tensor, b: Tensor) -> Tensor:
    """``(n, L), (m, L) -> (n, m)`` squared Euclidean distances (exact, no ``‖a‖² + ‖b‖² − 2aᵀb`` shortcut)."""
    return (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(dim=2)


def pairwise_likelihood(u: Tensor, y: Tensor, codes: Tensor, labels: Tensor, scale: float = 0.5) -> Tensor:
    """``mean_{i,j} pair_nll(scale · u_iᵀU_j, share_label(y_i, Y_j))``: the DPSH likelihood term."""
    return pair_nll(scale * (u @ codes.t()), share_label(y, labels)).mean()
