"""A complete third-party hashkit plugin: one loss with a typed config (the plugin guide's example)."""

import attrs
import torch

import hashkit
from hashkit.interfaces import Loss, LossInputs, LossResult


@attrs.frozen
class PairwiseMarginConfig:
    margin: float = attrs.field(default=0.5, validator=attrs.validators.ge(0.0))


class PairwiseMargin(Loss):
    """Pull codes of same-class pairs together, push other pairs below a cosine margin."""

    requires = ("codes", "labels")

    def __init__(self, cfg: PairwiseMarginConfig, code_length: int):
        super().__init__()
        self.margin, self.bits = cfg.margin, code_length

    def forward(self, inputs: LossInputs) -> LossResult:
        u = inputs.codes.float()
        cos = u @ u.T / self.bits
        same = (inputs.labels @ inputs.labels.T > 0).float()
        pos = ((1 - cos) * same).sum() / same.sum().clamp_min(1)
        neg = ((cos - self.margin).clamp_min(0) * (1 - same)).sum() / (1 - same).sum().clamp_min(1)
        return LossResult(value=pos + neg, parts={"pos": pos, "neg": neg})


def build(cfg: PairwiseMarginConfig, ctx) -> PairwiseMargin:
    """Pairwise margin loss on relaxed codes (example plugin)."""
    return PairwiseMargin(cfg, ctx.code_length)


@hashkit.hookimpl
def hashkit_register(register):
    register("loss", "pairwise_margin", build, config=PairwiseMarginConfig)
