"""``center_loss``: WS-DAN's feature-centre loss (Wen et al., ECCV 2016, as
GuYuc/WS-DAN.PyTorch @ 87779124 uses it), on the descriptor by default.

``loss = (1/B)·Σ_i ‖z_i - ĉ_{y_i}‖²`` with ``ĉ = c / ‖c‖`` the L2-normalised class centre
(``normalize_centers = false``: the raw centre). Centres are a float32 buffer ``(num_classes, D)``
(``centers``, saved in the state dict), zero-initialised, on the module's device. In training mode with
gradients enabled, after computing the loss the centres of the classes in the batch move towards their
features: ``c_y <- c_y + β·mean_{i: y_i = y}(z_i - ĉ_y)`` (detached), β = 0.05. WS-DAN writes one update
per sample with an indexed ``+=``, so with several samples of a class only one of them lands; the mean over
the class's samples is hashkit's deterministic version [inferred design]. Under torch.distributed the
sums and counts are all-reduced first, so every rank applies the update of the global batch. Labels are
single-label; a multi-hot row uses its first label.

Inputs: ``descriptor (B, D)`` (default; GDF-Net's fused ``[BAP ; GSRR]``), or ``codes`` / ``logits``
``(B, L)``; ``labels (B, C)``. Memory: ``num_classes × D`` floats (200 × 73,728 ≈ 59 MB for GDF-Net).
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
import torch.nn.functional as F

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult


@attrs.frozen
class CenterLossConfig:
    #: centre update rate β (WS-DAN: 0.05)
    beta: float = attrs.field(default=0.05, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)])
    #: compare with L2-normalised centres (WS-DAN)
    normalize_centers: bool = True
    #: which model output the loss reads
    input: Literal["descriptor", "codes", "logits"] = "descriptor"


class CenterLoss(Loss):
    def __init__(self, cfg: CenterLossConfig, num_classes: int, dim: int):
        super().__init__()
        self.cfg = cfg
        self.requires = (cfg.input, "labels")
        self.register_buffer("centers", torch.zeros(num_classes, dim, dtype=torch.float32))

    def forward(self, inputs: LossInputs) -> LossResult:
        z = getattr(inputs, self.cfg.input)
        if z is None:
            raise ContractError(f"loss 'center_loss' reads {self.cfg.input!r} but the model produced none")
        z = z.float()
        if z.shape[1] != self.centers.shape[1]:
            raise ContractError(f"center_loss was built for {self.cfg.input} of dim {self.centers.shape[1]}, "
                                f"received {z.shape[1]}")
        y = inputs.labels.float().argmax(dim=1)
        centers = F.normalize(self.centers, dim=1) if self.cfg.normalize_centers else self.centers
        target = centers[y]
        value = (z - target).pow(2).sum(dim=1).mean()
        if self.training and torch.is_grad_enabled() and self.cfg.beta > 0:
            self._update(y, z.detach() - target)
        return LossResult(value=value)

    @torch.no_grad()
    def _update(self, y: torch.Tensor, diff: torch.Tensor) -> None:
        total = torch.zeros_like(self.centers).index_add_(0, y, diff)
        counts = torch.bincount(y, minlength=self.centers.shape[0]).to(diff.dtype)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # every rank applies the same update from the global batch, so the centres stay identical
            torch.distributed.all_reduce(total)
            torch.distributed.all_reduce(counts)
        self.centers += self.cfg.beta * total / counts.clamp_min(1)[:, None]


def build_center_loss(cfg: CenterLossConfig, ctx: BuildContext) -> CenterLoss:
    """WS-DAN feature-centre loss with moving (buffer) class centres."""
    if not ctx.num_classes:
        raise ContractError("center_loss needs the dataset's number of classes")
    if cfg.input == "descriptor":
        if not ctx.descriptor_dims:
            raise ContractError("center_loss on the descriptor needs the aggregation's descriptor dims")
        dim = sum(ctx.descriptor_dims.values())
    else:
        if not ctx.code_length:
            raise ContractError(f"center_loss on {cfg.input} needs the code length")
        dim = ctx.code_length
    return CenterLoss(cfg, ctx.num_classes, dim)


def components(register):
    register("loss", "center_loss", build_center_loss, config=CenterLossConfig)
