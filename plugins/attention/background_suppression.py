"""``background_suppression``: the activation-mean foreground mask with soft suppression (FISH-style).

For the tapped map ``x (B, C, H, W)`` (ResNet-50 layer4 in FDH-MFE)::

    a = Σ_c x_c                         (B, H, W) activation map
    M = 1[a > mean_hw(a)]               binary foreground mask, per image
    S = M + ε (1 - M)                   soft mask: background scaled by ε (ε = 1 switches suppression off)
    features = x ⊙ S                    (B, C, H, W)
    maps     = S                        (B, 1, H, W), values in {ε, 1}

The mask is a step function of ``x``: it carries no gradient; gradients reach ``x`` through ``x ⊙ S``.
``extras["foreground_mask"]`` holds ``M`` (B, 1, H, W) for visualisation. The ``gnn_multilevel`` aggregation
multiplies the earlier stages by ``S`` (resized, nearest) when told to (``mask_map``), so the whole
multi-level graph sees the suppressed view, and the hash codes and therefore every code loss (the triplet
term of FDH-MFE included) are those of the suppressed view [inferred design].

``background_view = true`` (training only) adds the background as a feature view
(``extras["feature_views"]["background"] = (x ⊙ (1 - M), 1 - M)``): the model runs it through the
aggregation (which multiplies the other stages by ``1 - M``) and the head, and the losses read its codes as
``extras["background.codes"]`` -- the input of the triplet loss's ``mining = "fg_bg"`` (docs/methods/fdhmfe.md).
"""

from __future__ import annotations

import attrs
from torch import Tensor

from hashkit.interfaces import Attention, AttentionOutput, BuildContext


@attrs.frozen
class BackgroundSuppressionConfig:
    #: factor ε applied to background positions (FISH's 0.5; 1.0 = no suppression)
    epsilon: float = attrs.field(default=0.5, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)])
    #: in training, also hand the background x * (1 - M) to the model as the feature view "background"
    background_view: bool = False


def foreground_mask(x: Tensor) -> Tensor:
    """``(B, 1, H, W)`` float mask: 1 where the channel-summed activation exceeds its spatial mean."""
    a = x.detach().float().sum(dim=1, keepdim=True)
    return (a > a.mean(dim=(2, 3), keepdim=True)).to(x.dtype)


class BackgroundSuppression(Attention):
    num_maps = 1
    map_names = ("suppression",)

    def __init__(self, cfg: BackgroundSuppressionConfig, channels: int):
        super().__init__()
        self.cfg = cfg
        self.in_channels = self.out_channels = channels

    def forward(self, x: Tensor) -> AttentionOutput:
        m = foreground_mask(x)
        s = m + self.cfg.epsilon * (1 - m)
        extras = {"foreground_mask": m}
        if self.cfg.background_view and self.training:
            extras["feature_views"] = {"background": (x * (1 - m), 1 - m)}
        return AttentionOutput(features=x * s, maps=s, extras=extras)


def build_background_suppression(cfg: BackgroundSuppressionConfig, ctx: BuildContext) -> BackgroundSuppression:
    """Activation-mean foreground mask; background positions scaled by epsilon (soft suppression)."""
    return BackgroundSuppression(cfg, ctx.input_channels("background_suppression"))


def components(register):
    register("attention", "background_suppression", build_background_suppression,
             config=BackgroundSuppressionConfig)
