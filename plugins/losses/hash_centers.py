"""``csq`` and ``orthohash``: pointwise losses towards fixed, balanced binary class centres (hash centres).

Centre construction (CSQ: Yuan et al., CVPR 2020; this construction is hashkit's design):

1. a Hadamard matrix of order ``L`` when one is known: Sylvester's construction for powers of two, Paley's
   construction I for ``L = q + 1`` with ``q`` a prime ``≡ 3 (mod 4)`` (12, 24, 48, ...). Its first row is
   all +1 and is dropped with its negation (unbalanced); the other rows of ``[H; -H]`` are balanced and at
   Hamming distance ``>= L/2`` from each other;
2. the remaining classes (or all of them, when no Hadamard matrix of order ``L`` is known) are filled
   greedily with balanced random codes (exactly ``L/2`` bits at -1): out of ``candidates`` random balanced
   codes, repeatedly add the one farthest (largest minimum Hamming distance) from the chosen set.

:func:`min_pairwise_distance` reports the achieved minimum distance; both losses store it in the buffer
``min_distance`` next to the codebook ``centers`` (buffers travel with the loss's state dict).

Losses (``u``: relaxed codes ``(B, L)`` in ``[-1, 1]``, ``v``: hash-layer logits ``(B, L)``):

- ``csq``: ``mean_k BCE((u_k + 1)/2, (c_{y,k} + 1)/2) + lambda_q * mean_k (|u_k| - 1)^2`` (each log clamped at
  -100 as ``nn.BCELoss``, so saturated codes count as in the references); a multi-label centre is the sign of the
  sum of its labels' centres, zeros replaced by a fixed random ±1 vector;
- ``orthohash``: ``CE(s * (cos(v, C) - m * 1[c = y]), y)`` (multi-hot targets normalised), plus optional
  ``w_q * mean(1 - cos(v, sign(v).detach()))``.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit_plugins.losses._code_input import at_least_float32


# -- codebooks ----------------------------------------------------------------------------------------
def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n ** 0.5) + 1))


def sylvester_hadamard(order: int) -> Tensor:
    """The Sylvester Hadamard matrix ``(order, order)`` of ±1 (``order`` a power of two)."""
    if order < 1 or order & (order - 1):
        raise ValueError(f"Sylvester's construction needs a power of two, got {order}")
    h = torch.ones(1, 1)
    while h.shape[0] < order:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def paley_hadamard(order: int) -> Tensor:
    """Paley construction I: ``H = I + S`` of order ``q + 1`` with ``q`` prime ``≡ 3 (mod 4)``.

    ``S = [[0, 1ᵀ], [-1, Q]]`` with ``Q`` the Jacobsthal matrix ``Q_ij = χ(j - i)`` (χ the quadratic character
    mod q); ``H Hᵀ = (q + 1) I``. The first row is all +1.
    """
    q = order - 1
    if not (_is_prime(q) and q % 4 == 3):
        raise ValueError(f"Paley construction I needs order - 1 prime and ≡ 3 mod 4, got order {order}")
    squares = {(x * x) % q for x in range(1, q)}
    chi = torch.tensor([0.0] + [1.0 if a in squares else -1.0 for a in range(1, q)])
    idx = (torch.arange(q)[None, :] - torch.arange(q)[:, None]) % q
    s = torch.zeros(order, order)
    s[0, 1:] = 1.0
    s[1:, 0] = -1.0
    s[1:, 1:] = chi[idx]
    return torch.eye(order) + s


def hadamard_matrix(order: int) -> Tensor | None:
    """A Hadamard matrix of ``order`` with all-(+1) first row, or ``None`` when no construction applies."""
    if order >= 1 and order & (order - 1) == 0:
        return sylvester_hadamard(order)
    if _is_prime(order - 1) and (order - 1) % 4 == 3:
        return paley_hadamard(order)
    return None


def _balanced_random(n: int, length: int, generator: torch.Generator) -> Tensor:
    """``n`` random ±1 codes with exactly ``length // 2`` entries -1 each."""
    keys = torch.rand(n, length, generator=generator)
    ranks = keys.argsort(dim=1).argsort(dim=1)
    return torch.where(ranks < length // 2, -1.0, 1.0)


def hamming_distances(a: Tensor, b: Tensor) -> Tensor:
    """``(n, m)`` Hamming distances between ±1 code matrices ``a (n, L)`` and ``b (m, L)``."""
    return (a.shape[1] - a @ b.T) / 2


def min_pairwise_distance(codes: Tensor) -> int:
    """The minimum Hamming distance between two different rows of a ±1 codebook ``(n, L)`` (L if n < 2)."""
    if codes.shape[0] < 2:
        return int(codes.shape[1])
    d = hamming_distances(codes.float(), codes.float())
    d.fill_diagonal_(float("inf"))
    return int(d.min().item())


def build_centers(num_classes: int, length: int, *, seed: int = 0, use_hadamard: bool = True,
                  candidates: int = 4096) -> Tensor:
    """``(num_classes, length)`` ±1 float centres: Hadamard rows (when available), then greedy balanced codes."""
    if length < 2 or length % 2:
        raise ContractError(f"hash centres need an even code length >= 2 (balanced codes), got {length}")
    g = torch.Generator().manual_seed(seed)
    chosen = torch.empty(0, length)
    h = hadamard_matrix(length) if use_hadamard else None
    if h is not None:
        rows = torch.cat([h[1:], -h[1:]], 0)  # drop the all-(+1) row and its negation
        chosen = rows[:num_classes]
    need = num_classes - chosen.shape[0]
    if need > 0:
        pool = _balanced_random(max(candidates, 2 * need), length, g)
        if chosen.shape[0]:
            best = hamming_distances(pool, chosen).min(dim=1).values
        else:
            best = torch.full((pool.shape[0],), float(length + 1))
        picked = []
        for _ in range(need):
            # farthest candidate from the chosen set; ties go to the lowest index (deterministic)
            i = int(best.argmax())
            picked.append(pool[i])
            best = torch.minimum(best, hamming_distances(pool, pool[i : i + 1]).squeeze(1))
            best[i] = -1.0  # never pick the same code twice
        chosen = torch.cat([chosen, torch.stack(picked)], 0)
    return chosen.contiguous()


def _class_targets(labels: Tensor, centers: Tensor, fill: Tensor) -> Tensor:
    """Per-sample target centre ``(B, L)``: sign of the sum of the label centres, zeros -> ``fill``."""
    summed = labels.to(centers.dtype) @ centers
    return torch.where(summed == 0, fill.expand_as(summed), summed.sign())


# -- losses -------------------------------------------------------------------------------------------
@attrs.frozen
class CenterConfig:
    #: rows of a Hadamard matrix of order L first (Sylvester / Paley), then greedy balanced random codes
    use_hadamard: bool = True
    #: seed of the balanced random codes (the codebook is stored with the loss as a buffer)
    seed: int = 0
    #: random balanced candidates the greedy fill chooses from
    candidates: int = attrs.field(default=4096, validator=attrs.validators.ge(1))


@attrs.frozen
class CSQConfig(CenterConfig):
    #: weight of the quantisation term mean (|u| - 1)^2 (0.05 official code, 1e-4 PyTorch port)
    quantization: float = attrs.field(default=0.05, validator=attrs.validators.ge(0.0))


@attrs.frozen
class OrthoHashConfig(CenterConfig):
    #: logit scale s
    scale: float = attrs.field(default=8.0, validator=attrs.validators.gt(0.0))
    #: cosine margin m on the true class(es)
    margin: float = 0.2
    #: weight of 1 - cos(v, sign(v).detach()) (0 by default)
    quantization: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))


class _CenterLoss(Loss):
    def __init__(self, cfg: CenterConfig, num_classes: int, code_length: int):
        super().__init__()
        self.cfg = cfg
        centers = build_centers(num_classes, code_length, seed=cfg.seed, use_hadamard=cfg.use_hadamard,
                                candidates=cfg.candidates)
        self.register_buffer("centers", centers)
        self.register_buffer("min_distance", torch.tensor(min_pairwise_distance(centers)))
        fill = _balanced_random(1, code_length, torch.Generator().manual_seed(cfg.seed + 1))[0]
        self.register_buffer("multi_label_fill", fill)


class CSQLoss(_CenterLoss):
    requires = ("codes", "labels")

    def forward(self, inputs: LossInputs) -> LossResult:
        u = at_least_float32(inputs.codes)
        target = (_class_targets(inputs.labels.to(u.dtype), self.centers.to(u.dtype),
                                 self.multi_label_fill.to(u.dtype)) + 1) / 2
        # BCE clamps each log at -100, as the references' nn.BCELoss (no clamp of p: saturated codes count)
        center = F.binary_cross_entropy((u + 1) / 2, target)
        quant = (u.abs() - 1).pow(2).mean()
        value = center + self.cfg.quantization * quant
        return LossResult(value=value, parts={"center": center, "quant": quant})


class OrthoHashLoss(_CenterLoss):
    requires = ("logits", "labels")

    def forward(self, inputs: LossInputs) -> LossResult:
        v = at_least_float32(inputs.logits)
        labels = inputs.labels.to(v.dtype)
        cos = F.normalize(v, dim=1) @ F.normalize(self.centers.to(v.dtype), dim=1).T
        z = self.cfg.scale * (cos - self.cfg.margin * labels)
        target = labels / labels.sum(dim=1, keepdim=True).clamp_min(1e-12)
        ce = -(target * F.log_softmax(z, dim=1)).sum(dim=1).mean()
        quant = (1 - F.cosine_similarity(v, torch.where(v >= 0, 1.0, -1.0).to(v.dtype).detach(), dim=1)).mean()
        return LossResult(value=ce + self.cfg.quantization * quant, parts={"ce": ce, "quant": quant})


def _sizes(ctx: BuildContext, what: str) -> tuple[int, int]:
    if not ctx.code_length or not ctx.num_classes:
        raise ContractError(f"the {what} loss needs the code length and the number of classes")
    return ctx.num_classes, ctx.code_length


def build_csq(cfg: CSQConfig, ctx: BuildContext) -> CSQLoss:
    """CSQ: BCE towards fixed balanced hash centres (Hadamard / Paley / greedy) plus quantisation."""
    return CSQLoss(cfg, *_sizes(ctx, "csq"))


def build_orthohash(cfg: OrthoHashConfig, ctx: BuildContext) -> OrthoHashLoss:
    """OrthoHash: cosine-margin cross-entropy of the hash logits against fixed balanced centres."""
    return OrthoHashLoss(cfg, *_sizes(ctx, "orthohash"))


def components(register):
    register("loss", "csq", build_csq, config=CSQConfig)
    register("loss", "orthohash", build_orthohash, config=OrthoHashConfig)
