"""``gem``: generalised-mean pooling (Radenović et al.) with a learnable exponent p.

``d_c = ( Σ_{(h,w) ∈ M} max(x_chw, eps)^p / |M| )^{1/p}`` over the kept locations ``M`` (all of them
unless ``mask = "max"``); p = 1 is average pooling, p -> ∞ tends to max pooling. p is one scalar shared by
all channels and scales, learned when ``learn_p``. Scales, MAX-mask, L2 and whitening: see
:mod:`hashkit_plugins.aggregation._global_descriptor`. DAGF's aggregation (docs/methods/dagf.md):
``scales = [1, 3, 5]``, ``mask = "max"``, ``p = 3``, ``whitening = true``.

Input ``(B, C, H, W)`` -> ``{"global": (B, C)}``.
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor, nn

from hashkit.interfaces import BuildContext
from hashkit_plugins.aggregation._global_descriptor import GlobalDescriptor, GlobalDescriptorOptions


@attrs.frozen
class GeMConfig(GlobalDescriptorOptions):
    #: initial exponent (1 = average, large = max)
    p: float = attrs.field(default=3.0, validator=attrs.validators.gt(0.0))
    #: learn p with the network
    learn_p: bool = True
    #: features are clamped to at least eps before the power
    eps: float = attrs.field(default=1e-6, validator=attrs.validators.gt(0.0))


class GeM(GlobalDescriptor):
    def __init__(self, cfg: GeMConfig, channels: int):
        super().__init__(cfg, channels)
        self.cfg = cfg
        p = torch.tensor(float(cfg.p))
        self.p = nn.Parameter(p) if cfg.learn_p else nn.Buffer(p)

    def pool(self, x: Tensor, mask: Tensor) -> Tensor:
        p = self.p.to(x.dtype)
        powered = x.clamp_min(self.cfg.eps).pow(p) * mask
        mean = powered.sum(dim=(2, 3)) / mask.sum(dim=(2, 3)).clamp_min(1.0)
        return mean.pow(1.0 / p)


def build_gem(cfg: GeMConfig, ctx: BuildContext) -> GeM:
    """Generalised-mean (GeM) pooling with learnable p; optional scales, MAX-mask, L2 and whitening."""
    return GeM(cfg, ctx.input_channels("gem"))


def components(register):
    register("aggregation", "gem", build_gem, config=GeMConfig)
