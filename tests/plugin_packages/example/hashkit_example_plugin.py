"""A complete third-party hashkit plugin (the plugin guide's example): a loss with a typed config, and an
attention component that nests a channel interaction chosen in the recipe (a built-in such as ``icon``)."""

import attrs

import hashkit
from hashkit.interfaces import Attention, AttentionOutput, ComponentRef, Loss, LossInputs, LossResult, nested


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


@attrs.frozen
class MixedAttentionConfig:
    mixer: ComponentRef = nested("channel_interaction", default="icon")


class MixedAttention(Attention):
    """Features -> features + mixer(features), where the mixer is any channel interaction; no maps."""

    def __init__(self, mixer, channels: int):
        super().__init__()
        self.mixer, self.in_channels, self.out_channels = mixer, channels, channels

    def forward(self, x):
        return AttentionOutput(features=x + self.mixer(x))


def build_mixed(cfg: MixedAttentionConfig, ctx) -> MixedAttention:
    """Residual channel mixing by a nested channel interaction (example plugin)."""
    return MixedAttention(ctx.build(cfg.mixer), ctx.input_channels("mixed_channels"))


@hashkit.hookimpl
def hashkit_register(register):
    register("loss", "pairwise_margin", build, config=PairwiseMarginConfig)
    register("attention", "mixed_channels", build_mixed, config=MixedAttentionConfig)
