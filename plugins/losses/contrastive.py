"""``contrastive``: the pairwise contrastive loss on tuples (Radenović et al.; cnnimageretrieval-pytorch).

For every tuple of the batch (``protocol.tuple_id``), with query ``q`` and each other member ``x``
(``protocol.tuple_role``: 1 = positive, 2 = negative, anything else ignored) and ``d = ‖q − x‖``:

    ℓ(q, x) = ½ d²                      (positive)
    ℓ(q, x) = ½ max(0, margin − d)²     (negative)

summed over the tuple's pairs and averaged over tuples (``reduction = "mean"``) or summed over the batch
(``"sum"``, cnnimageretrieval's convention). Vectors are L2-normalised first when ``normalize`` (the
descriptors of the landmark recipe are already unit length; relaxed codes are not). ``on`` picks the
model output: ``"descriptor"`` (real-valued model) or ``"codes"`` (the hash head's relaxed codes).
Needs the ``tuples`` protocol. Value: 0-dim float32; parts ``positive`` and ``negative``.
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
import torch.nn.functional as F

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit.testing import ComponentExample, example_loss_inputs


@attrs.frozen
class ContrastiveConfig:
    #: margin for negatives (about 0.85 for ResNet-101 GeM as hashkit assumes it; cnnimageretrieval default 0.7)
    margin: float = attrs.field(default=0.85, validator=attrs.validators.gt(0.0))
    #: which output the loss reads
    on: Literal["descriptor", "codes"] = "descriptor"
    normalize: bool = True
    reduction: Literal["mean", "sum"] = "mean"


class Contrastive(Loss):
    def __init__(self, cfg: ContrastiveConfig):
        super().__init__()
        self.cfg = cfg
        self.requires = (cfg.on, "protocol.tuple_id", "protocol.tuple_role")

    def forward(self, inputs: LossInputs) -> LossResult:
        x = getattr(inputs, self.cfg.on)
        if x is None or "tuple_id" not in inputs.protocol or "tuple_role" not in inputs.protocol:
            raise ContractError(f"contrastive needs {self.cfg.on!r} and protocol tuple_id / tuple_role "
                                "(training_protocol 'tuples')")
        x = x.float()
        if self.cfg.normalize:
            x = F.normalize(x, dim=1)
        tid = inputs.protocol["tuple_id"].to(x.device).long()
        role = inputs.protocol["tuple_role"].to(x.device).long()
        is_query = role == 0
        num_tuples = int(is_query.sum())
        if num_tuples == 0:
            zero = x.sum() * 0.0
            return LossResult(value=zero, parts={"positive": zero.detach(), "negative": zero.detach()})
        query_of = torch.full((int(tid.max()) + 1,), -1, dtype=torch.long, device=x.device)
        query_of[tid[is_query]] = torch.nonzero(is_query).flatten()
        pair = ((role == 1) | (role == 2)) & (query_of[tid] >= 0)
        anchors = query_of[tid[pair]]
        d = (x[pair] - x[anchors]).pow(2).sum(dim=1).clamp_min(1e-12).sqrt()
        positive = role[pair] == 1
        per_pair = torch.where(positive, 0.5 * d.pow(2), 0.5 * (self.cfg.margin - d).clamp_min(0).pow(2))
        scale = 1.0 / num_tuples if self.cfg.reduction == "mean" else 1.0
        pos_part = per_pair[positive].sum() * scale
        neg_part = per_pair[~positive].sum() * scale
        return LossResult(value=pos_part + neg_part, parts={"positive": pos_part, "negative": neg_part})


def build_contrastive(cfg: ContrastiveConfig, ctx: BuildContext) -> Contrastive:
    """Contrastive loss on (query, positive, negatives) tuples of L2-normalised descriptors or codes."""
    return Contrastive(cfg)


def _example() -> ComponentExample:
    def inputs(comp):
        li = example_loss_inputs(batch=8)
        li.protocol = {"tuple_id": torch.arange(8) // 4, "tuple_role": torch.tensor([0, 1, 2, 2] * 2)}
        return (li,)

    return ComponentExample(inputs=inputs)


def components(register):
    register("loss", "contrastive", build_contrastive, config=ContrastiveConfig, example=_example)
