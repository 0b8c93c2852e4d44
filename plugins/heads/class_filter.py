"""``class_filter``: FISH's classifier + class filter + hash layer (the code is an affine map of the logits).

For the concatenated descriptor ``f (B, D)`` (FISH: GAP of the space-filtered layer4, D = 2048)::

    z = fc(f)                           (B, C)  class logits (returned as class_logits)
    g_ic = 1 if c = argmax_c z_ic else κ        (first index on ties; a constant for autograd)
    h = b(z ⊙ g)                        (B, L)  the code, no squashing (returned as logits)
    codes = tanh(h)                             (only to meet the [-1, 1] contract: sign(codes) = sign(h))

κ = ``class_mask_rate`` = 0.7 (FISH's value in both chenzhenduo/FISH and aassxun/DSH_Analysis @ 44271bc).
``fc`` (D -> C) and ``b`` (C -> L) are ``nn.Linear`` with PyTorch's default init. Module names ``fc`` and
``b`` are the reference's ``model.fc`` and ``model.b``. FISH's losses read ``logits`` (h) and
``class_logits`` (z).

Tensor contract: ``{name: (B, D_name)}`` -> ``HeadOutput(logits = h (B, L), codes = tanh(h) (B, L),
class_logits = z (B, C))``.
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor, nn

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, HashHead, HeadOutput


@attrs.frozen
class ClassFilterConfig:
    #: κ, the multiplier of every class logit except the top one (FISH: 0.7)
    class_mask_rate: float = attrs.field(default=0.7, validator=attrs.validators.ge(0.0))


def class_mask(logits: Tensor, rate: float) -> Tensor:
    """``(B, C) -> (B, C)``: 1 at each row's first argmax, ``rate`` elsewhere (no gradient)."""
    with torch.no_grad():
        mask = torch.full_like(logits, rate)
        mask.scatter_(1, logits.argmax(dim=1, keepdim=True), 1.0)
    return mask


class ClassFilterHead(HashHead):
    def __init__(self, cfg: ClassFilterConfig, descriptor_dims: dict[str, int], code_length: int, num_classes: int):
        super().__init__()
        self.cfg = cfg
        self.descriptor_dims = dict(descriptor_dims)
        self.code_length = code_length
        self.num_classes = num_classes
        self.fc = nn.Linear(sum(self.descriptor_dims.values()), num_classes)
        self.b = nn.Linear(num_classes, code_length)

    def forward(self, descriptors: dict[str, Tensor]) -> HeadOutput:
        f = torch.cat([descriptors[k] for k in self.descriptor_dims], dim=1)
        z = self.fc(f)
        h = self.b(z * class_mask(z, self.cfg.class_mask_rate))
        return HeadOutput(logits=h, codes=torch.tanh(h), class_logits=z)


def build_class_filter(cfg: ClassFilterConfig, ctx: BuildContext) -> ClassFilterHead:
    """FISH head: classifier, class filter (non-top logits x κ), linear hash layer on the filtered logits."""
    if not ctx.code_length:
        raise ContractError("class_filter needs a code length (recipe code_lengths)")
    if not ctx.descriptor_dims:
        raise ContractError("class_filter needs the aggregation's descriptor dims")
    if not ctx.num_classes:
        raise ContractError("class_filter needs the dataset's number of classes (its code is a map of the logits)")
    return ClassFilterHead(cfg, ctx.descriptor_dims, ctx.code_length, ctx.num_classes)


def components(register):
    register("hash_head", "class_filter", build_class_filter, config=ClassFilterConfig)
