"""DCH's normalised distance (Cao et al., "Deep Cauchy Hashing", CVPR 2018): ``d(a, b) = (L/2)·(1 - cos(a, b))``.

``cos = aᵀb / max(‖a‖‖b‖, norm_eps)``, optionally clamped to ``<= cos_max`` (the PyTorch port uses 0.99 in
the Cauchy cross-entropy so that ``d >= 0.005·L`` and ``log(d/γ)`` stays finite).
"""

from __future__ import annotations

from torch import Tensor

from hashkit_plugins.losses._code_input import at_least_float32


def cauchy_distance(a: Tensor, b: Tensor, *, cos_max: float | None = None, norm_eps: float = 1e-4) -> Tensor:
    """``(n, L), (m, L) -> (n, m)`` distances ``(L/2)(1 - cos)``."""
    length = a.shape[1]
    norms = a.norm(dim=1, keepdim=True) * b.norm(dim=1, keepdim=True).t()
    cos = (a @ b.t()) / norms.clamp_min(norm_eps)
    if cos_max is not None:
        cos = cos.clamp(max=cos_max)
    return (length / 2.0) * (1.0 - cos)


def similarity(labels: Tensor) -> Tensor:
    """``(B, C)`` multi-hot -> ``(B, B)`` float ``s_ij = 1`` when i and j share a label, else 0."""
    labels = at_least_float32(labels)
    return (labels @ labels.t() > 0).to(labels.dtype)
