"""``dshsd``: DSHSD, deep supervised hashing based on stable distribution (IEEE Access 2019).

As DeepHash-pytorch trains it (batch only): ``z = tanh u`` of the raw output; a contrastive term on the
squared distances within the batch (margin 2L, all b×b pairs) and a bias-free linear classifier ``o = W z``::

    L_d = α · mean[½ s D + ½ (1 − s) max(2L − D, 0)],   D_ij = ‖z_i − z_j‖²
    L_c = −mean_i Σ_c y_ic log softmax(o_i)_c                     (classification = "softmax")
    L_c = mean_i Σ_c [o_ic − y_ic o_ic + log(1 + e^{−o_ic})]      (classification = "sigmoid": the
                                                                   reference's rule for "nuswide" datasets)
    loss = L_c + L_d

α = 0.05. The reference never gives ``W`` to the optimiser, so it keeps its random init: that is the default
here too (``W`` is a loss parameter with ``requires_grad = False``); ``train_classifier = true`` trains it
(fix). Parts: ``classification``, ``contrastive``.
Reference: swuxyj/DeepHash-pytorch @ ab14068 ``DSHSD.py`` (``DSHSDLoss``).
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit_plugins.losses._batch_input import RawInputConfig, code_and_class_sizes, read_batch
from hashkit_plugins.losses.dsh import contrastive


@attrs.frozen
class DSHSDConfig(RawInputConfig):
    #: weight α of the contrastive term
    alpha: float = attrs.field(default=0.05, validator=attrs.validators.ge(0.0))
    #: "softmax" cross-entropy (single-label) or "sigmoid" cross-entropy (the reference's multi-label rule)
    classification: Literal["softmax", "sigmoid"] = "softmax"
    #: train the classifier W (the reference leaves it at its random init)
    train_classifier: bool = False


class DSHSD(Loss):
    def __init__(self, cfg: DSHSDConfig, code_length: int, num_classes: int):
        super().__init__()
        self.cfg = cfg
        self.requires = (cfg.input, "labels")
        self.classifier = nn.Linear(code_length, num_classes, bias=False)
        self.classifier.weight.requires_grad_(cfg.train_classifier)

    def forward(self, inputs: LossInputs) -> LossResult:
        u, y = read_batch(inputs, self.cfg.input, "dshsd")
        z = torch.tanh(u)
        pair = self.cfg.alpha * contrastive(z, y, z, y, 2.0 * z.shape[1])
        o = F.linear(z, self.classifier.weight.to(z.dtype))
        if self.cfg.classification == "softmax":
            classification = (-F.log_softmax(o, dim=1) * y).sum(dim=1).mean()
        else:
            classification = (o - y * o + F.softplus(-o)).sum(dim=1).mean()
        return LossResult(value=classification + pair, parts={"classification": classification, "contrastive": pair})


def build_dshsd(cfg: DSHSDConfig, ctx: BuildContext) -> DSHSD:
    """DSHSD: contrastive pairs of tanh codes plus a (by default untrained) linear classifier's cross-entropy."""
    return DSHSD(cfg, *code_and_class_sizes(ctx, "dshsd"))


def components(register):
    register("loss", "dshsd", build_dshsd, config=DSHSDConfig)
