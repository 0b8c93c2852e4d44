"""``greedyhash``: GreedyHash (Su, Zhang, Han, Tian, NeurIPS 2018), as DeepHash-pytorch trains it.

The raw output ``u`` is binarised with the straight-through sign (``b = sign u`` forward, identity gradient,
no clipping; ``sign(0) = 0`` as ``torch.sign``); a bias-free linear classifier ``W`` (C×L, default init, a
*parameter of the loss*, so the optimiser trains it as the reference does) classifies ``b``::

    loss = CE(W b, argmax y)  +  α · mean | |u| − 1 |³

α = 0.1 (1 on ImageNet). Single-label by construction (argmax of multi-hot labels); ``multi_label = "bce"``
uses a sigmoid cross-entropy on all labels instead (fix). The straight-through sign is also a head option
(``[model.hash_head] activation = "sign_ste"``) for any other method. Parts: ``classification``,
``quantization``. Reference: swuxyj/DeepHash-pytorch @ ab14068 ``GreedyHash.py`` (``GreedyHashLoss``).
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch.nn.functional as F
from torch import nn

from hashkit.codes.binarize import sign_ste
from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit_plugins.losses._batch_input import RawInputConfig, code_and_class_sizes, read_batch


@attrs.frozen
class GreedyHashConfig(RawInputConfig):
    #: weight α of the cubic quantisation term
    alpha: float = attrs.field(default=0.1, validator=attrs.validators.ge(0.0))
    #: "argmax": softmax CE on the first label (reference); "bce": sigmoid CE on every label (multi-label fix)
    multi_label: Literal["argmax", "bce"] = "argmax"
    #: sign(0) of the straight-through binarisation: "zero" (torch.sign, reference) or "plus_one"
    zero_to: Literal["zero", "plus_one"] = "zero"


class GreedyHash(Loss):
    def __init__(self, cfg: GreedyHashConfig, code_length: int, num_classes: int):
        super().__init__()
        self.cfg = cfg
        self.requires = (cfg.input, "labels")
        self.classifier = nn.Linear(code_length, num_classes, bias=False)

    def forward(self, inputs: LossInputs) -> LossResult:
        u, y = read_batch(inputs, self.cfg.input, "greedyhash")
        b = sign_ste(u, self.cfg.zero_to)
        logits = F.linear(b, self.classifier.weight.to(b.dtype))
        if self.cfg.multi_label == "argmax":
            classification = F.cross_entropy(logits, y.argmax(dim=1))
        else:
            classification = F.binary_cross_entropy_with_logits(logits, y)
        quantization = (u.abs() - 1).pow(3).abs().mean()
        return LossResult(value=classification + self.cfg.alpha * quantization,
                          parts={"classification": classification, "quantization": quantization})


def build_greedyhash(cfg: GreedyHashConfig, ctx: BuildContext) -> GreedyHash:
    """GreedyHash: classifier on straight-through sign codes (trained with the network) plus cubic quantisation."""
    return GreedyHash(cfg, *code_and_class_sizes(ctx, "greedyhash"))


def components(register):
    register("loss", "greedyhash", build_greedyhash, config=GreedyHashConfig)
