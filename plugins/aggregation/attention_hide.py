"""``attention_hide``: FISH's attention-guided hiding as a training view, around any aggregation.

In training mode, from the feature map ``F`` of ``stage`` (FISH: layer4, before the space filter) and the
input batch ``x`` (without gradient; aassxun/DSH_Analysis @ 44271bc ``fish.py`` and chenzhenduo/FISH)::

    a_i   = bilinear upsampling (align_corners = True) of Σ_c F_ic to 224 x 224
    θ_i   ~ U(threshold)                          (0.9 .. 1.0, one per image)
    m_i   = 1[a_i < θ_i · max a_i]                (strict; broadcast over RGB)
    view  = x ⊙ m                                 (the most attended region becomes 0 = the mean colour)

The view is added as ``extras["views"]["hidden"]``; the model encodes it with gradient (a second train-mode
forward, so BatchNorm statistics are updated twice per step, as in the reference) and FISH's second
cross-entropy reads ``extras["hidden.class_logits"]`` (``cross_entropy`` with ``views = ["hidden"]``,
``views_reduce = "sum"``).

- ``hide_size = "reference"`` upsamples to 224 x 224 as the reference code hard-codes, which only fits
  224-pixel inputs: other sizes are a ContractError naming the option; ``"input"`` upsamples to the input's
  H x W (the fix).
- θ is drawn from torch's global generator (the trainer seeds it per step, so runs resume exactly); the
  reference draws it with Python's ``random.uniform`` — same distribution, different stream.

Descriptors are the inner aggregation's (``inner``, default ``gap``), unchanged in eval mode.

Tensor contract: ``AggregationInput`` with ``stages[stage]`` ``(B, C, h, w)`` and ``image`` ``(B, 3, H, W)``
-> the inner aggregation's output, plus ``extras["views"]["hidden"]`` ``(B, 3, H, W)`` in training.
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor

from hashkit.errors import ContractError
from hashkit.interfaces import AggregationInput, BuildContext, ComponentRef, nested
from hashkit_plugins.aggregation._view_wrapper import ViewWrapper, check_stage, view_example

REFERENCE_SIZE = 224


def _unit_pair(inst, attribute, value):
    lo, hi = value
    if not 0.0 <= lo <= hi:
        raise ValueError(f"'{attribute.name}' must be (low, high) with 0 <= low <= high, found {value}")


@attrs.frozen
class AttentionHideConfig:
    #: the wrapped aggregation (its descriptors are this component's descriptors)
    inner: ComponentRef = nested("aggregation", default="gap")
    #: the tapped stage whose channel sum drives the mask (FISH: layer4)
    stage: str = "layer4"
    #: range of θ, the fraction of the maximum above which pixels are hidden (FISH: 0.9 .. 1.0)
    threshold: tuple[float, float] = attrs.field(default=(0.9, 1.0), validator=_unit_pair)
    #: "reference": upsample the attention to 224 x 224 (224-pixel inputs only); "input": to the input size
    hide_size: Literal["reference", "input"] = "reference"


def hide_view(images: Tensor, features: Tensor, thresholds: Tensor, size: tuple[int, int] | None = None) -> Tensor:
    """``images (B, 3, H, W)``, ``features (B, C, h, w)``, ``thresholds (B,)`` -> ``images`` with the pixels
    whose upsampled channel sum is ``>= θ · max`` set to 0. ``size`` is the upsampling size (default: H x W)."""
    size = tuple(size or images.shape[-2:])
    if size != tuple(images.shape[-2:]):
        raise ContractError(f"attention_hide: the attention is upsampled to {size[0]}x{size[1]} (hide_size = "
                            f"\"reference\" hard-codes 224) but the images are {images.shape[-2]}x{images.shape[-1]}; "
                            f"set hide_size = \"input\"")
    with torch.no_grad():
        a = features.detach().float().sum(dim=1, keepdim=True)
        a = F.interpolate(a, size=size, mode="bilinear", align_corners=True)
        limit = thresholds.to(a).view(-1, 1, 1, 1) * a.amax(dim=(1, 2, 3), keepdim=True)
        return images * (a < limit).to(images.dtype)


class AttentionHide(ViewWrapper):
    def __init__(self, cfg: AttentionHideConfig, inner):
        super().__init__(inner)
        self.cfg = cfg

    def make_views(self, inp: AggregationInput) -> dict[str, Tensor]:
        features = self.stage_features(inp, self.cfg.stage, "attention_hide")
        lo, hi = self.cfg.threshold
        theta = lo + (hi - lo) * torch.rand(inp.image.shape[0], device=inp.image.device)
        size = (REFERENCE_SIZE, REFERENCE_SIZE) if self.cfg.hide_size == "reference" else None
        return {"hidden": hide_view(inp.image, features, theta, size)}


def build_attention_hide(cfg: AttentionHideConfig, ctx: BuildContext) -> AttentionHide:
    """FISH's attention-guided hiding: a training view with the most attended pixels zeroed, around any aggregation."""
    check_stage("attention_hide", cfg.stage, ctx)
    return AttentionHide(cfg, ctx.build(cfg.inner))


def _example():
    return view_example({"hide_size": "input"}, "hidden")


def components(register):
    register("aggregation", "attention_hide", build_attention_hide, config=AttentionHideConfig, example=_example)
