"""``linear``: a hash layer on the concatenated descriptors, optional hidden layer and classifier.

``logits = scale · (W2 · act(W1 · d))`` (or ``scale · (W · d + b)`` without hidden layer; with
``scale_at = "input"`` the descriptor is scaled instead, ``W · (scale · d) + b``, as GDF-Net's
``Linear(100·z)``; ``batch_norm`` appends BatchNorm1d(L), OrthoHash's hash layer). ``codes = tanh(logits)``
by default; ``activation = "sign_ste"`` gives the straight-through sign of GreedyHash (usable by any method),
``"identity"`` the logits themselves. With ``classifier = true`` a linear classifier on the relaxed codes
(``classifier_on = "logits"``: on the pre-activation values, GDF-Net's semantic classifier on ``h``) gives
``class_logits``.

``activation = "sigmoid"`` gives ``codes = 2·sigmoid(logits) - 1`` (= tanh(logits / 2), in [-1, 1]) for losses
that work on ``sigmoid(logits)`` (DPAH): ``codes`` is 0 exactly where ``sigmoid(logits)`` rounds to ½, as the
sign of ``sigmoid(u) - ½`` in DPAH's reference code.
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
from torch import Tensor, nn

from hashkit.codes.binarize import sign_ste
from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, HashHead, HeadOutput


@attrs.frozen
class LinearHeadConfig:
    #: hidden width of an MLP head (0 = a single linear layer)
    hidden: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    bias: bool = True
    #: activation producing the relaxed codes ("sigmoid": 2 sigmoid(logits) - 1)
    activation: Literal["tanh", "identity", "sign_ste", "sigmoid"] = "tanh"
    #: multiply logits before the activation (GDF-Net's x100 style scale)
    scale: float = 1.0
    #: where ``scale`` applies: "output" (the logits) or "input" (the descriptor, so the bias is not scaled)
    scale_at: Literal["output", "input"] = "output"
    #: add a linear classifier on the relaxed codes (needs the dataset's class count)
    classifier: bool = False
    #: what the classifier reads: the relaxed "codes" or the pre-activation "logits"
    classifier_on: Literal["codes", "logits"] = "codes"
    #: bias of the classifier (GDF-Net's semantic classifier has none)
    classifier_bias: bool = True
    dropout: float = attrs.field(default=0.0, validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)])
    #: > 0: hash-layer weights drawn from N(0, init_std^2) and bias 0 (DeepHash-pytorch's ResNet head: 0.01);
    #: 0 keeps PyTorch's default Linear init
    init_std: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    #: BatchNorm1d on the logits before the activation (OrthoHash's hash layer)
    batch_norm: bool = False


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
        if cfg.init_std > 0:
            nn.init.normal_(layers[-1].weight, 0.0, cfg.init_std)
            if layers[-1].bias is not None:
                nn.init.zeros_(layers[-1].bias)
        if cfg.batch_norm:
            layers.append(nn.BatchNorm1d(code_length))
        self.hash = nn.Sequential(*layers)
        self.num_classes = num_classes if cfg.classifier else 0
        self.classifier = nn.Linear(code_length, num_classes, bias=cfg.classifier_bias) if cfg.classifier else None

    def forward(self, descriptors: dict[str, Tensor]) -> HeadOutput:
        d = torch.cat([descriptors[k] for k in self.descriptor_dims], dim=1)
        if self.cfg.scale_at == "input":
            logits = self.hash(d * self.cfg.scale)
        else:
            logits = self.hash(d) * self.cfg.scale
        if self.cfg.activation == "tanh":
            codes = torch.tanh(logits)
        elif self.cfg.activation == "sign_ste":
            codes = sign_ste(logits)
        elif self.cfg.activation == "sigmoid":
            codes = 2 * torch.sigmoid(logits) - 1
        else:
            codes = logits
        class_logits = None
        if self.classifier is not None:
            class_logits = self.classifier(logits if self.cfg.classifier_on == "logits" else codes)
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
