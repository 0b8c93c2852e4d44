"""``triplet``: triplet loss on relaxed codes with batch-hard, batch-all or semi-hard mining.

Distances between rows of the input ``x (B, D)`` (``codes`` by default):

- ``cosine``: ``d = 1 - cos(x_i, x_j)`` (cosine-distance units; ``(L/2) d`` is the Hamming surrogate);
- ``hamming``: ``d = (L - x_iᵀx_j) / 2`` (bits; exact Hamming distance for ±1 codes).

The margin ``m`` is in the distance's units; ``margin_bits > 0`` gives it in bits instead (converted to
``2 · margin_bits / L`` for ``cosine``). Positives share at least one label (the anchor itself excluded),
negatives share none. Per triplet ``t = d(a,p) - d(a,n) + m``; the hinge is ``[t]+``, or ``log(1 + e^t)``
with ``soft = true`` (soft margin, no ``m``).

Mining:

- ``batch_hard`` (Hermans et al.): per anchor the farthest positive and the closest negative; mean over the
  anchors that have both;
- ``batch_all``: every valid (a, p, n); mean over the triplets with a non-zero loss (part ``active`` = their
  fraction of the valid triplets);
- ``semi_hard`` (FaceNet, as in TensorFlow Addons): per positive pair the closest negative farther than the
  positive, or the farthest negative when there is none; mean over the positive pairs;
- ``fg_bg`` (FDH-MFE's foreground/background contrast, docs/methods/fdhmfe.md [inferred design]): per anchor the
  farthest positive, and as the negative the anchor's own background code ``b_a`` (read from ``background``,
  default ``extras.background.codes``: ``background_suppression`` with ``background_view = true``):
  ``t = d(a, p) - d(a, b_a) + m``; mean over the anchors that have a positive. The background code gets
  gradient through ``d(a, b_a)``.

A batch without a valid triplet gives 0 (with a graph, so backward still works). Use a P x K sampler.

FDH-MFE [inferred design]: background suppression sits inside the network, so the codes *are* the codes of
the suppressed view and ``input = "codes"`` is what the design asks for; ``input = "extras.NAME"`` reads a
second view's codes that a component puts in its extras.
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult

_FIELDS = ("codes", "logits", "descriptor")


def _check_input(inst, attribute, value: str) -> None:
    if value not in _FIELDS and not (value.startswith("extras.") and len(value) > len("extras.")):
        raise ValueError(f"'input' must be one of {_FIELDS} or 'extras.NAME', found {value!r}")


@attrs.frozen
class TripletConfig:
    mining: Literal["batch_hard", "batch_all", "semi_hard", "fg_bg"] = "batch_hard"
    distance: Literal["cosine", "hamming"] = "cosine"
    #: margin in the distance's units (cosine distance or bits)
    margin: float = attrs.field(default=0.2, validator=attrs.validators.ge(0.0))
    #: margin in bits; > 0 overrides ``margin``
    margin_bits: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    #: soft margin log(1 + exp(d_ap - d_an)) instead of the hinge
    soft: bool = False
    #: which tensor the loss reads: codes, logits, descriptor or extras.NAME (a (B, D) tensor)
    input: str = attrs.field(default="codes", validator=_check_input)
    #: fg_bg mining: the anchors' background codes (B, D), same choices as ``input``
    background: str = attrs.field(default="extras.background.codes", validator=_check_input)


def pairwise_distance(x: Tensor, kind: str) -> Tensor:
    """``(B, B)`` distances between the rows of ``x (B, D)``: ``1 - cos`` or ``(D - x xᵀ) / 2``."""
    if kind == "cosine":
        xn = F.normalize(x, dim=1)
        return 1 - xn @ xn.T
    return (x.shape[1] - x @ x.T) / 2


def rowwise_distance(x: Tensor, y: Tensor, kind: str) -> Tensor:
    """``(B,)`` distances between row ``i`` of ``x`` and row ``i`` of ``y`` (same measures as above)."""
    if kind == "cosine":
        return 1 - (F.normalize(x, dim=1) * F.normalize(y, dim=1)).sum(1)
    return (x.shape[1] - (x * y).sum(1)) / 2


class TripletLoss(Loss):
    def __init__(self, cfg: TripletConfig, code_length: int | None):
        super().__init__()
        self.cfg = cfg
        self.requires = (cfg.input, "labels") + ((cfg.background,) if cfg.mining == "fg_bg" else ())
        self.code_length = code_length

    def _margin(self, dim: int) -> float:
        if self.cfg.margin_bits > 0:
            return self.cfg.margin_bits if self.cfg.distance == "hamming" else 2 * self.cfg.margin_bits / dim
        return self.cfg.margin

    def _input(self, inputs: LossInputs, field: str) -> Tensor:
        if field.startswith("extras."):
            name = field.split(".", 1)[1]
            if name not in inputs.extras:
                hint = (" (the background view: background_suppression with background_view = true)"
                        if name == "background.codes" else "")
                raise ContractError(f"the triplet loss reads extras[{name!r}] but the model provides "
                                    f"{sorted(inputs.extras)}{hint}")
            return inputs.extras[name]
        return getattr(inputs, field)

    def _hinge(self, t: Tensor) -> Tensor:
        return F.softplus(t) if self.cfg.soft else torch.relu(t)

    def forward(self, inputs: LossInputs) -> LossResult:
        x = self._input(inputs, self.cfg.input).float()
        labels = inputs.labels.float()
        d = pairwise_distance(x, self.cfg.distance)
        m = 0.0 if self.cfg.soft else self._margin(x.shape[1])
        same = (labels @ labels.T) > 0
        eye = torch.eye(len(x), dtype=torch.bool, device=x.device)
        pos, neg = same & ~eye, ~same
        zero = x.sum() * 0.0
        if self.cfg.mining == "batch_hard":
            valid = pos.any(1) & neg.any(1)
            d_ap = d.masked_fill(~pos, float("-inf")).amax(1)
            d_an = d.masked_fill(~neg, float("inf")).amin(1)
            if not valid.any():
                return LossResult(value=zero, parts={"valid": zero})
            value = self._hinge(d_ap[valid] - d_an[valid] + m).mean()
            return LossResult(value=value, parts={"valid": valid.float().mean()})
        if self.cfg.mining == "fg_bg":
            background = self._input(inputs, self.cfg.background).float()
            if background.shape != x.shape:
                raise ContractError(f"triplet fg_bg: background {tuple(background.shape)} and {self.cfg.input} "
                                    f"{tuple(x.shape)} must have the same shape")
            valid = pos.any(1)
            if not valid.any():
                return LossResult(value=zero + background.sum() * 0.0, parts={"valid": zero})
            d_ap = d.masked_fill(~pos, float("-inf")).amax(1)
            d_ab = rowwise_distance(x, background, self.cfg.distance)  # d(a, b_a)
            value = self._hinge(d_ap[valid] - d_ab[valid] + m).mean()
            return LossResult(value=value, parts={"valid": valid.float().mean(), "background": d_ab.mean()})
        if self.cfg.mining == "batch_all":
            mask = pos[:, :, None] & neg[:, None, :]
            t = d[:, :, None] - d[:, None, :] + m
            losses = self._hinge(t)[mask]
            if losses.numel() == 0:
                return LossResult(value=zero, parts={"active": zero})
            active = losses > 0 if not self.cfg.soft else torch.ones_like(losses, dtype=torch.bool)
            value = losses[active].sum() / active.sum().clamp_min(1)
            return LossResult(value=value, parts={"active": active.float().mean()})
        # semi_hard: per positive pair (a, p), the closest negative with d_an > d_ap, else the farthest negative
        d_ap = d[:, :, None]  # (a, p, 1)
        d_an = d[:, None, :]  # (a, 1, n)
        outside = neg[:, None, :] & (d_an > d_ap)
        closest_outside = torch.where(outside, d_an, torch.full_like(d_an, float("inf"))).amin(2)
        farthest = d.masked_fill(~neg, float("-inf")).amax(1)[:, None].expand_as(closest_outside)
        chosen = torch.where(outside.any(2), closest_outside, farthest)
        valid = pos & neg.any(1)[:, None]
        if not valid.any():
            return LossResult(value=zero, parts={"valid": zero})
        value = self._hinge(d[valid] - chosen[valid] + m).mean()
        return LossResult(value=value, parts={"valid": valid.float().sum() / pos.float().sum().clamp_min(1)})


def build_triplet(cfg: TripletConfig, ctx: BuildContext) -> TripletLoss:
    """Triplet loss on codes with batch-hard, batch-all or semi-hard mining (cosine or Hamming distance)."""
    return TripletLoss(cfg, ctx.code_length)


def components(register):
    register("loss", "triplet", build_triplet, config=TripletConfig)
