"""``spoc``: sum-pooled convolutional features (Babenko & Lempitsky, ICCV 2015).

``d_c = Σ_{(h,w) ∈ M} α_hw · x_chw`` with the Gaussian centre prior
``α_hw = exp(−‖(h, w) − centre‖² / (2σ²))``, ``σ`` = one third of the distance from the centre to the
nearest border (``center_prior = false``: ``α = 1``). The paper follows it with PCA whitening and L2:
here ``normalize`` and the learned ``whitening`` option of
:mod:`hashkit_plugins.aggregation._global_descriptor` (scales and MAX-mask too).

Input ``(B, C, H, W)`` -> ``{"global": (B, C)}``.
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from hashkit.interfaces import BuildContext
from hashkit_plugins.aggregation._global_descriptor import GlobalDescriptor, GlobalDescriptorOptions


@attrs.frozen
class SPoCConfig(GlobalDescriptorOptions):
    #: weight locations by a Gaussian centred on the map
    center_prior: bool = True


def center_prior(h: int, w: int, *, dtype=torch.float32, device=None) -> Tensor:
    """Gaussian centre prior ``(h, w)``; sigma = 1/3 of the centre's distance to the nearest border."""
    ys = torch.arange(h, dtype=dtype, device=device) - (h - 1) / 2
    xs = torch.arange(w, dtype=dtype, device=device) - (w - 1) / 2
    sigma = max(min(h, w) / 2, 0.5) / 3
    return torch.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / (2 * sigma**2))


class SPoC(GlobalDescriptor):
    def __init__(self, cfg: SPoCConfig, channels: int):
        super().__init__(cfg, channels)
        self.cfg = cfg

    def pool(self, x: Tensor, mask: Tensor) -> Tensor:
        weight = mask
        if self.cfg.center_prior:
            weight = weight * center_prior(*x.shape[2:], dtype=x.dtype, device=x.device)
        return (x * weight).sum(dim=(2, 3))


def build_spoc(cfg: SPoCConfig, ctx: BuildContext) -> SPoC:
    """SPoC: centre-weighted sum pooling; optional scales, MAX-mask, L2 and whitening."""
    return SPoC(cfg, ctx.input_channels("spoc"))


def components(register):
    register("aggregation", "spoc", build_spoc, config=SPoCConfig)
