"""``hhf``: the hashing-guided hinge function (Xu et al. 2022): Proxy-Anchor with hinges, for hash codes.

With ``cos`` the cosine of code ``u_x`` and proxy ``p`` (one learnable proxy per class, ``(C, L)``)::

    pos(x, p) = exp(α · relu(1 - δ - cos)) - 1          neg(x, p) = exp(α · relu(cos - τ - δ)) - 1
    loss = (1/|P+|) Σ_{p∈P+} log(1 + Σ_{x∈X_p+} pos) + (1/|P|) Σ_p log(1 + Σ_{x∈X_p-} neg)
         + β · Σ_i ||sign(u_i) - u_i||²                    (sum over the batch, as the official code)
         + w_u · uniformity(proxies)                        (optional, FDH-MFE design)

τ (``tau``; default: from :func:`hhf_tau`) is the cosine of the best achievable minimum distance of a binary
code with ``m = ceil(log2 C)`` information bits: ``τ = 1 - 2 d_min / L``. Sources, in order:

1. the official ``codetable.xlsx`` (JerryXu0129/HHF @ 7cf5ab6c): m = 7 (65-128 classes) and m = 8
   (129-256 classes) at 12/24/32/48 bits;
2. m = 9 (257-512 classes, VegFru) and m = 10 (513-1024, NABirds) at 12/24/32/48 bits: linear codes hashkit
   builds from generator polynomials (even-weight, extended Golay, extended BCH, punctured extended BCH;
   :mod:`hashkit_plugins.losses._linear_codes`), minimum distances verified exhaustively in the tests;
3. any other (L, C): hashkit's substitution rule [inferred design], ``d_min`` of hashkit's centre
   codebook (``hash_centers.build_centers``: Hadamard/Paley rows, then greedy balanced codes).
"""

from __future__ import annotations

import math

import attrs
import torch

from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit_plugins.losses._proxies import (
    anchor_aggregate,
    make_proxies,
    proxy_cosines,
    proxy_sizes,
    proxy_uniformity,
)
from hashkit_plugins.losses._linear_codes import CONSTRUCTED_DMIN, construction
from hashkit_plugins.losses.hash_centers import build_centers, min_pairwise_distance

#: best minimum distance d_min of a binary code [L, m] (HHF codetable.xlsx): {m: {L: d_min}}
CODE_TABLE_DMIN: dict[int, dict[int, int]] = {
    7: {12: 4, 24: 10, 32: 14, 48: 22},
    8: {12: 3, 24: 8, 32: 12, 48: 20},
}


def hhf_tau(code_length: int, num_classes: int) -> tuple[float, str]:
    """``(τ, source)`` for HHF: the code table, else hashkit's linear codes, else the codebook substitution rule."""
    m = max(1, math.ceil(math.log2(num_classes)))
    d_min = CODE_TABLE_DMIN.get(m, {}).get(code_length)
    source = f"code table (m = {m}, L = {code_length})"
    if d_min is None and code_length in CONSTRUCTED_DMIN.get(m, {}):
        d_min = CONSTRUCTED_DMIN[m][code_length]
        source = f"hashkit linear code [{code_length}, {m}, {d_min}]: {construction(code_length, m)[0]}"
    if d_min is None:
        d_min = min_pairwise_distance(build_centers(num_classes, code_length))
        source = f"hashkit codebook minimum distance (m = {m} not in the code table at L = {code_length})"
    return 1.0 - 2.0 * d_min / code_length, source


def resolve_tau(tau: float | None, code_length: int, num_classes: int) -> tuple[float, str]:
    """``(τ, source)``: the recipe's value, or :func:`hhf_tau` when it gives none (HHF, HyP²)."""
    return hhf_tau(code_length, num_classes) if tau is None else (float(tau), "recipe")


@attrs.frozen
class HHFConfig:
    #: scale α
    alpha: float = attrs.field(default=16.0, validator=attrs.validators.gt(0.0))
    #: hinge margin δ
    delta: float = 0.2
    #: negative threshold τ; unset = :func:`hhf_tau` (code table, else codebook rule)
    tau: float | None = None
    #: weight β of the sign-gap quantisation Σ_i ||sign(u_i) - u_i||²
    beta: float = attrs.field(default=1e-3, validator=attrs.validators.ge(0.0))
    #: weight of the proxy-uniformity regulariser (0 = off) and its temperature t
    uniformity: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    uniformity_t: float = attrs.field(default=2.0, validator=attrs.validators.gt(0.0))


class HHFLoss(Loss):
    requires = ("codes", "labels")

    def __init__(self, cfg: HHFConfig, num_classes: int, code_length: int):
        super().__init__()
        self.cfg = cfg
        self.proxies = make_proxies(num_classes, code_length)
        self.tau, self.tau_source = resolve_tau(cfg.tau, code_length, num_classes)

    def forward(self, inputs: LossInputs) -> LossResult:
        u = inputs.codes.float()
        cos = proxy_cosines(u, self.proxies)
        a, d = self.cfg.alpha, self.cfg.delta
        pos = torch.exp(a * torch.relu(1 - d - cos)) - 1
        neg = torch.exp(a * torch.relu(cos - self.tau - d)) - 1
        pos_term, neg_term = anchor_aggregate(pos, neg, inputs.labels)
        sign = torch.where(u >= 0, 1.0, -1.0)
        quant = (sign - u).pow(2).sum()
        parts = {"pos": pos_term, "neg": neg_term, "quant": quant}
        value = pos_term + neg_term + self.cfg.beta * quant
        if self.cfg.uniformity:
            parts["uniformity"] = proxy_uniformity(self.proxies, self.cfg.uniformity_t)
            value = value + self.cfg.uniformity * parts["uniformity"]
        return LossResult(value=value, parts=parts)

    def extra_repr(self) -> str:
        return f"tau={self.tau:.4f} ({self.tau_source})"


def build_hhf(cfg: HHFConfig, ctx: BuildContext) -> HHFLoss:
    """HHF: Proxy-Anchor with hashing-guided hinges (τ from the code table) and sign-gap quantisation."""
    return HHFLoss(cfg, *proxy_sizes(ctx, "hhf"))


def components(register):
    register("loss", "hhf", build_hhf, config=HHFConfig)
