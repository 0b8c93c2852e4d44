"""``linear``: a hash layer on the concatenated descriptors, optional hidden layer and classifier.

``logits = W2 · act(W1 · d)`` (or ``W · d`` without hidden layer), ``codes = tanh(scale · logits)``;
with ``classifier = true`` a linear classifier on the relaxed codes gives ``class_logits`` (the semantic
classifier "on the code" of GDF-Net).
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
from torch import Tensor, nn

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, HashHead, HeadOutput


@attrs.frozen
class LinearHeadConfig:
    #: hidden width of an MLP head (0 = a single linear layer)
    hidden: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    bias: bool = True
    #: activation producing the relaxed codes
    activation: Literal["tanh", "identity", "sign_ste"] = "tanh"
    #: multiply logits before the activation (GDF-Net's x100 style scale)
    scale: float = 1.0
    #: add a linear classifier on the relaxed codes (needs the dataset's class count)
    classifier: bool = False
    dropout: float = attrs.field(default=0.0, validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)])


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):  # noqa: D401
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad):
        return grad


class LinearHead(HashHead):
    def __init__(self, cfg: LinearHeadConfig, descriptor_dims: dict[str, int], code_length: int, num_classes: int):
        super().__init__()
        self.cfg = cfg
        self.descriptor_dims = dict(descriptor_dims)
        self.code_length = code_length
        in_dim = sum(self.descriptor_dims.values())
        layers: list[nn.Module] = []
        if cfg.dropout:
            layers.append(nn.Dropout(cfg.dropout))
        if cfg.hidden:
            layers += [nn.Linear(in_dim, cfg.hidden), nn.ReLU(inplace=True), nn.Linear(cfg.hidden, code_length, bias=cfg.bias)]
        else:
            layers.append(nn.Linear(in_dim, code_length, bias=cfg.bias))
        self.hash = nn.Sequential(*layers)
        self.num_classes = num_classes if cfg.classifier else 0
        self.classifier = nn.Linear(code_length, num_classes) if cfg.classifier else None

    def forward(self, descriptors: dict[str, Tensor]) -> HeadOutput:
        d = torch.cat([descriptors[k] for k in self.descriptor_dims], dim=1)
        logits = self.hash(d) * self.cfg.scale
        if self.cfg.activation == "tanh":
            codes = torch.tanh(logits)
        elif self.cfg.activation == "sign_ste":
            codes = _SignSTE.apply(logits)
        else:
            codes = logits
        class_logits = self.classifier(codes) if self.classifier is not None else None
        return HeadOutput(logits=logits, codes=codes, class_logits=class_logits)


def build_linear_head(cfg: LinearHeadConfig, ctx: BuildContext) -> LinearHead:
    """Linear (or MLP) hash layer with tanh and an optional classifier on the code."""
    if not ctx.code_length:
        raise ContractError("the linear hash head needs a code length (recipe code_lengths)")
    if not ctx.descriptor_dims:
        raise ContractError("the linear hash head needs the aggregation's descriptor dims")
    if cfg.classifier and not ctx.num_classes:
        raise ContractError("classifier = true needs the dataset's number of classes")
    return LinearHead(cfg, ctx.descriptor_dims, ctx.code_length, ctx.num_classes or 0)


def components(register):
    register("hash_head", "linear", build_linear_head, config=LinearHeadConfig)
