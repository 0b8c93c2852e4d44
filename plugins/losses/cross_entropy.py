"""``cross_entropy``: softmax cross-entropy on the hash head's class logits (the classifier on the code).

``loss = mean_i CE(class_logits_i, y_i)``; multi-hot labels use the normalised label distribution as the
target (``-sum_c y_ic / |y_i| * log softmax_c``), which equals plain CE for one-hot labels.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F

from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult


@attrs.frozen
class CrossEntropyConfig:
    label_smoothing: float = attrs.field(default=0.0, validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)])


class CrossEntropy(Loss):
    requires = ("class_logits", "labels")

    def __init__(self, cfg: CrossEntropyConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, inputs: LossInputs) -> LossResult:
        logits = inputs.class_logits.float()
        target = inputs.labels.float()
        target = target / target.sum(dim=1, keepdim=True).clamp_min(1e-12)
        if self.cfg.label_smoothing:
            c = target.shape[1]
            target = target * (1 - self.cfg.label_smoothing) + self.cfg.label_smoothing / c
        value = -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
        return LossResult(value=value)


def build_cross_entropy(cfg: CrossEntropyConfig, ctx: BuildContext) -> CrossEntropy:
    """Cross-entropy on the class logits of a hash head with a classifier."""
    return CrossEntropy(cfg)


def components(register):
    register("loss", "cross_entropy", build_cross_entropy, config=CrossEntropyConfig)
