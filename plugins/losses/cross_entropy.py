"""``cross_entropy``: softmax cross-entropy on the hash head's class logits (the classifier on the code).

``loss = mean_i CE(class_logits_i, y_i)``; multi-hot labels use the normalised label distribution as the
target (``-sum_c y_ic / |y_i| * log softmax_c``), which equals plain CE for one-hot labels.

``views = ["crop", "drop"]`` adds the named augmented views, whose class logits arrive as
``extras["<view>.class_logits"]`` (made by ``wsdan_views``, ``attention_hide``, ``saliency_zoom``; the model
encodes them in training, see docs/architecture.md). ``views_reduce`` says how:

- ``"mean"`` (default): the mean of the CE of the raw image and of each view (WS-DAN, docs/methods/gdfnet.md);
- ``"sum"``: their sum (FISH: ``CE(z, y) + CE(z_hidden, y)``);
- ``"mean_logits"``: one CE of the averaged logits ``(z + z_view1 + ...) / (1 + k)`` (CHN: ``(y33 + y_zoom) / 2``).

Label smoothing ``ε``: ``smoothing_to = "all"`` (default) mixes ``ε / C`` into every class
(``(1 - ε) y + ε / C``, PyTorch's rule); ``"others"`` gives each labelled class ``1 - ε`` and every other class
``ε / (C - 1)`` (CHN's ``smooth_CE`` with peak 0.9 is ``ε = 0.1``).
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
import torch.nn.functional as F

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult


@attrs.frozen
class CrossEntropyConfig:
    label_smoothing: float = attrs.field(default=0.0, validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)])
    #: "all": (1 - ε) y + ε / C; "others": labelled classes 1 - ε, every other class ε / (C - 1) (CHN)
    smoothing_to: Literal["all", "others"] = "all"
    #: augmented views whose class logits (extras "<view>.class_logits") join the raw image's
    views: tuple[str, ...] = ()
    #: how the views join: "mean" of the CEs, "sum" of the CEs (FISH), CE of the "mean_logits" (CHN)
    views_reduce: Literal["mean", "sum", "mean_logits"] = "mean"


class CrossEntropy(Loss):
    requires = ("class_logits", "labels")

    def __init__(self, cfg: CrossEntropyConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.views:
            self.requires = ("class_logits", "labels", *(f"extras.{v}.class_logits" for v in cfg.views))

    def _ce(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return -(target * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()

    def _target(self, labels: torch.Tensor) -> torch.Tensor:
        eps = self.cfg.label_smoothing
        if eps and self.cfg.smoothing_to == "others":
            c = labels.shape[1]
            return torch.where(labels > 0, 1.0 - eps, eps / max(c - 1, 1)).to(labels.dtype)
        target = labels / labels.sum(dim=1, keepdim=True).clamp_min(1e-12)
        if eps:
            target = target * (1 - eps) + eps / labels.shape[1]
        return target

    def _view_logits(self, inputs: LossInputs) -> dict[str, torch.Tensor]:
        views = {}
        for view in self.cfg.views:
            key = f"{view}.class_logits"
            if key not in inputs.extras:
                raise ContractError(f"loss cross_entropy: views needs extras {key!r}, which the model did not produce "
                                    "(a views extra such as wsdan_views and the model's views hook, see "
                                    "docs/architecture.md)")
            views[view] = inputs.extras[key]
        return views

    def forward(self, inputs: LossInputs) -> LossResult:
        target = self._target(inputs.labels.float())
        if not self.cfg.views:
            return LossResult(value=self._ce(inputs.class_logits, target))
        views = self._view_logits(inputs)
        if self.cfg.views_reduce == "mean_logits":
            mean_logits = (inputs.class_logits.float() + sum(v.float() for v in views.values())) / (1 + len(views))
            return LossResult(value=self._ce(mean_logits, target))
        parts = {"raw": self._ce(inputs.class_logits, target)}
        parts.update({view: self._ce(logits, target) for view, logits in views.items()})
        total = sum(parts.values())
        return LossResult(value=total if self.cfg.views_reduce == "sum" else total / len(parts), parts=parts)


def build_cross_entropy(cfg: CrossEntropyConfig, ctx: BuildContext) -> CrossEntropy:
    """Cross-entropy on the class logits of a hash head with a classifier."""
    return CrossEntropy(cfg)


def components(register):
    register("loss", "cross_entropy", build_cross_entropy, config=CrossEntropyConfig)
