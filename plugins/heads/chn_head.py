"""``chn_head``: CHN's MLP hash layer on the concatenated level descriptors + a bottleneck classifier.

For descriptors ``g_1 .. g_k`` (CHN: the three ``level_conv_pool`` descriptors of layer2/3/4, 1024 each)::

    h = hashing_concat([g_1; ...; g_k])       BN1d(ΣD) -> Linear(ΣD -> hidden) -> BN1d(hidden) -> ELU -> Linear(hidden -> L)
    z = fc(b_j(g_j))                          b_j: Linear(D_j -> L), fc: Linear(L -> C); g_j = ``classifier_from``
    codes = tanh(h)                           (only for the [-1, 1] contract: sign(codes) = sign(h); CHN has no tanh)

as aassxun/DSH_Analysis @ 44271bc ``models/chn.py`` (= kaiba007/FG-CHN's ``CANet``) builds it, all layers
with PyTorch's default init. Returned: ``logits = h`` (the code CHN regresses onto its proxy codes),
``class_logits = z``.

The reference model also holds layers that never reach a loss: ``b_i`` for the other descriptors (computed
and discarded), ``b_cat`` (Linear ΣD -> L) and ``fc_x`` (Linear ``unused_classifier_in`` -> C, 2048 = the
layer4 width). ``unused_heads = true`` (default) keeps them as parameters, never computed, so a reference
checkpoint loads one to one and the parameter count equals the reference's; ``false`` drops them (they
receive no gradient either way; the optimiser skips them).

Module names equal the reference's under ``backbone.``: ``hashing_concat.{0,1,2,4}``, ``b1``, ``b2``, ``b3``,
``b_cat``, ``fc``, ``fc_x``.

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
class ChnHeadConfig:
    #: hidden width of the hash MLP (CHN: 512)
    hidden: int = attrs.field(default=512, validator=attrs.validators.ge(1))
    #: the descriptor feeding the bottleneck classifier ("" = the last one; CHN: the layer4 tap)
    classifier_from: str = ""
    #: keep the reference's never-used layers (b_i of the other descriptors, b_cat, fc_x) for checkpoint parity
    unused_heads: bool = True
    #: input width of the unused fc_x (CHN: 2048, ResNet-50's layer4)
    unused_classifier_in: int = attrs.field(default=2048, validator=attrs.validators.ge(1))


class ChnHead(HashHead):
    def __init__(self, cfg: ChnHeadConfig, descriptor_dims: dict[str, int], code_length: int, num_classes: int):
        super().__init__()
        self.cfg = cfg
        self.descriptor_dims = dict(descriptor_dims)
        self.code_length = code_length
        self.num_classes = num_classes
        names = list(self.descriptor_dims)
        self.classifier_from = cfg.classifier_from or names[-1]
        if self.classifier_from not in names:
            raise ContractError(f"chn_head: classifier_from {self.classifier_from!r} is not a descriptor ({names})")
        total = sum(self.descriptor_dims.values())
        self.hashing_concat = nn.Sequential(
            nn.BatchNorm1d(total), nn.Linear(total, cfg.hidden), nn.BatchNorm1d(cfg.hidden), nn.ELU(),
            nn.Linear(cfg.hidden, code_length),
        )
        self.bottleneck = f"b{names.index(self.classifier_from) + 1}"
        for i, (name, dim) in enumerate(self.descriptor_dims.items(), start=1):
            if name == self.classifier_from or cfg.unused_heads:
                self.add_module(f"b{i}", nn.Linear(dim, code_length))
        if cfg.unused_heads:
            self.b_cat = nn.Linear(total, code_length)
        self.fc = nn.Linear(code_length, num_classes)
        if cfg.unused_heads:
            self.fc_x = nn.Linear(cfg.unused_classifier_in, num_classes)

    def forward(self, descriptors: dict[str, Tensor]) -> HeadOutput:
        h = self.hashing_concat(torch.cat([descriptors[k] for k in self.descriptor_dims], dim=1))
        z = self.fc(getattr(self, self.bottleneck)(descriptors[self.classifier_from]))
        return HeadOutput(logits=h, codes=torch.tanh(h), class_logits=z)


def build_chn_head(cfg: ChnHeadConfig, ctx: BuildContext) -> ChnHead:
    """CHN head: BN-MLP hash layer on the concatenated descriptors, bottleneck classifier on one of them."""
    if not ctx.code_length:
        raise ContractError("chn_head needs a code length (recipe code_lengths)")
    if not ctx.descriptor_dims:
        raise ContractError("chn_head needs the aggregation's descriptor dims")
    if not ctx.num_classes:
        raise ContractError("chn_head needs the dataset's number of classes (bottleneck classifier)")
    return ChnHead(cfg, ctx.descriptor_dims, ctx.code_length, ctx.num_classes)


def _example():
    from hashkit.testing import ComponentExample

    g = torch.Generator().manual_seed(0)
    dims = {"layer2": 6, "layer3": 6, "layer4": 6}
    return ComponentExample(config={"hidden": 8, "unused_classifier_in": 10},
                            ctx=BuildContext(code_length=12, num_classes=5, descriptor_dims=dims),
                            inputs=({k: torch.randn(3, d, generator=g) for k, d in dims.items()},))


def components(register):
    register("hash_head", "chn_head", build_chn_head, config=ChnHeadConfig, example=_example)
