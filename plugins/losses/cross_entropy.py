"""``cross_entropy``: softmax cross-entropy on the hash head's class logits (the classifier on the code).

``loss = mean_i CE(class_logits_i, y_i)``; multi-hot labels use the normalised label distribution as the
target (``-sum_c y_ic / |y_i| * log softmax_c``), which equals plain CE for one-hot labels.

``views = ["crop", "drop"]`` averages the loss over the raw image and the named augmented views, whose class
logits arrive as ``extras["<view>.class_logits"]`` (WS-DAN training, see ``wsdan_views`` and
docs/methods/gdfnet.md).
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult


@attrs.frozen
class CrossEntropyConfig:
    label_smoothing: float = attrs.field(default=0.0, validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)])
    #: augmented views whose class logits (extras "<view>.class_logits") are averaged in with the raw image's
    views: tuple[str, ...] = ()


class CrossEntropy(Loss):
    requires = ("class_logits", "labels")

    def __init__(self, cfg: CrossEntropyConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.views:
            self.requires = ("class_logits", "labels", *(f"extras.{v}.class_logits" for v in cfg.views))

    def _ce(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return -(target * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()

    def forward(self, inputs: LossInputs) -> LossResult:
        target = inputs.labels.float()
        target = target / target.sum(dim=1, keepdim=True).clamp_min(1e-12)
        if self.cfg.label_smoothing:
            c = target.shape[1]
            target = target * (1 - self.cfg.label_smoothing) + self.cfg.label_smoothing / c
        value = self._ce(inputs.class_logits, target)
        if not self.cfg.views:
            return LossResult(value=value)
        parts = {"raw": value}
        for view in self.cfg.views:
            key = f"{view}.class_logits"
            if key not in inputs.extras:
                raise ContractError(f"loss cross_entropy: views needs extras {key!r}, which the model did not produce "
                                    "(a views extra such as wsdan_views and the model's views hook, see "
                                    "docs/methods/gdfnet.md)")
            parts[view] = self._ce(inputs.extras[key], target)
        return LossResult(value=sum(parts.values()) / len(parts), parts=parts)


def build_cross_entropy(cfg: CrossEntropyConfig, ctx: BuildContext) -> CrossEntropy:
    """Cross-entropy on the class logits of a hash head with a classifier."""
    return CrossEntropy(cfg)


def components(register):
    register("loss", "cross_entropy", build_cross_entropy, config=CrossEntropyConfig)
