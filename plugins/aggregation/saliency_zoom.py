"""``saliency_zoom``: CHN's attention zoom (a saliency sampler driven by peak responses) as a training view.

Written from the description of kaiba007/FG-CHN @ 3375298 ``utils/attention_zoom.py`` (the function
aassxun/DSH_Analysis' ``CHN.py`` imports but does not ship), in the spirit of Recasens et al., "Learning to
Zoom: a Saliency-Based Sampling Layer for Neural Networks", ECCV 2018. Per image, without gradient, with
``G = grid_size`` (31), ``P = padding`` (30)::

    a  = bilinear (align_corners) upsampling of Σ_c F_c (F = ``stage``, CHN: layer4) to 224 x 224
    d  = bilinear (align_corners) resize of a to G x G, divided by its maximum
    peaks: positions that are the maximum of their 3 x 3 window (-inf padding; on ties the window's first
           position in row-major order) and >= mean(d)
    mode r ~ U{0, 1, 2}:
      0: all peaks, radius ρ_p = radius · sqrt(d(p))
      1: the peaks with d(p) > U_p, U_p ~ U(0, 1) each, ρ_p = radius · sqrt(d(p))
      2: the highest peak (first maximum), ρ_p = radius · d(p)
    S(u, v) = base + Σ_p d(p) · exp(-((u - p_x)² + (v - p_y)²) / (2 (G ρ_p)²))      (S ≡ base without peaks)
    S̄ = replicate padding of S by P; X(r, c) = (c - P) / (G - 1), Y(r, c) = (r - P) / (G - 1)
    k  = exp(-4 ln 2 (Δr² + Δc²) / fwhm²) on a (2P + 1)² window;  ∗ = valid convolution -> G x G
    g_x = clamp(2 (k ∗ S̄X) / (k ∗ S̄) - 1, -1, 1),   g_y likewise with Y
    grid = bilinear (align_corners) upsampling of (g_x, g_y) to the input size
    view = grid_sample(x, grid, bilinear, zero padding, align_corners = False)

Defaults are the official constants: base 0.09, radius 0.08 (an untrained ``ScaleLayer`` in the official
code, so a constant), fwhm 13, G 31, P 30. The view is added as ``extras["views"]["zoom"]``; CHN's
classification loss averages the logits of the image and of its zoom (``cross_entropy`` with
``views = ["zoom"]``, ``views_reduce = "mean_logits"``).

Differences from the official function, none of which changes the maths:

- one batched computation on any device (the official code loops over the images in Python and is
  CUDA-only); the mode and the per-peak draws come from torch's global generator (seeded per step by the
  trainer) instead of Python's ``random``;
- an image whose attention is zero everywhere gets S ≡ base (the identity sampling grid); the official
  code divides by a zero maximum;
- ``zoom_size = "reference"`` keeps the intermediate 224 x 224 upsampling at any input size; ``"input"``
  uses the input's H x W. The grid is upsampled to the input's H x W (the official code uses H x H, the
  same for the square inputs it is used with).

Descriptors are the inner aggregation's, unchanged in eval mode.

Tensor contract: ``AggregationInput`` with ``stages[stage]`` ``(B, C, h, w)`` and ``image`` ``(B, 3, H, W)``
-> the inner aggregation's output, plus ``extras["views"]["zoom"]`` ``(B, 3, H, W)`` in training.
"""

from __future__ import annotations

import math
from typing import Literal

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor

from hashkit.interfaces import AggregationInput, BuildContext, ComponentRef, nested
from hashkit_plugins.aggregation._view_wrapper import ViewWrapper, check_stage, view_example

REFERENCE_SIZE = 224


@attrs.frozen
class SaliencyZoomConfig:
    #: the wrapped aggregation (its descriptors are this component's descriptors)
    inner: ComponentRef = nested("aggregation", default="gap")
    #: the tapped stage whose channel sum is the saliency (CHN: layer4)
    stage: str = "layer4"
    #: "reference": the attention passes through 224 x 224 before the grid resize; "input": the input's size
    zoom_size: Literal["reference", "input"] = "reference"
    #: G, the saliency grid size
    grid_size: int = attrs.field(default=31, validator=attrs.validators.ge(2))
    #: P, replicate padding of the saliency grid (the kernel window is 2P + 1)
    padding: int = attrs.field(default=30, validator=attrs.validators.ge(0))
    #: full width at half maximum of the distortion kernel
    fwhm: float = attrs.field(default=13.0, validator=attrs.validators.gt(0.0))
    #: constant added to the saliency map
    base_ratio: float = attrs.field(default=0.09, validator=attrs.validators.ge(0.0))
    #: peak radius scale (fraction of the grid)
    radius: float = attrs.field(default=0.08, validator=attrs.validators.gt(0.0))


def peak_mask(d: Tensor) -> Tensor:
    """``(B, 1, G, G) -> (B, 1, G, G)`` bool: 3x3 local maxima (first position on ties) that are >= the mean."""
    padded = F.pad(d, (1, 1, 1, 1), value=float("-inf"))
    _, idx = F.max_pool2d(padded, kernel_size=3, stride=1, return_indices=True)
    g = d.shape[-1]
    own = torch.arange((g + 2) * (g + 2), device=d.device).view(1, 1, g + 2, g + 2)[:, :, 1:-1, 1:-1]
    return (idx == own) & (d >= d.mean(dim=(2, 3), keepdim=True))


def saliency_map(d: Tensor, modes: Tensor, uniforms: Tensor, base: float, radius: float) -> Tensor:
    """The saliency ``S (B, 1, G, G)`` of normalised maps ``d (B, 1, G, G)`` for per-image ``modes (B,)`` in
    {0, 1, 2} and per-position draws ``uniforms (B, G*G)`` (used by mode 1 at the peaks)."""
    b, _, g, _ = d.shape
    flat = d.reshape(b, g * g)
    peaks = peak_mask(d).reshape(b, g * g) & (flat > 0)
    modes = modes.view(b, 1)
    chosen = torch.where(modes == 1, peaks & (flat > uniforms), peaks)
    top = torch.where(peaks, flat, torch.full_like(flat, -1.0)).argmax(dim=1, keepdim=True)
    first_top = torch.zeros_like(peaks).scatter_(1, top, True) & peaks
    chosen = torch.where(modes == 2, first_top, chosen)
    rho = radius * torch.where(modes == 2, flat, flat.sqrt())
    cols = chosen.any(dim=0).nonzero().squeeze(1)
    out = torch.full((b, g * g), float(base), dtype=d.dtype, device=d.device)
    if len(cols):
        coords = torch.stack(torch.meshgrid(torch.arange(g), torch.arange(g), indexing="ij"), -1).reshape(-1, 2)
        coords = coords.to(d)
        dist2 = ((coords[:, None, :] - coords[None, cols, :]) ** 2).sum(-1)  # (G*G, P): positions x peaks
        width = 2 * (g * rho[:, cols]).pow(2)  # (B, P)
        weight = torch.where(chosen[:, cols], flat[:, cols], torch.zeros_like(width))
        safe = torch.where(chosen[:, cols], width, torch.ones_like(width))
        out = out + (weight[:, None, :] * torch.exp(-dist2[None] / safe[:, None, :])).sum(-1)
    return out.view(b, 1, g, g)


def gaussian_window(size: int, fwhm: float) -> Tensor:
    """``(size, size)`` Gaussian ``exp(-4 ln2 ((x - c)² + (y - c)²) / fwhm²)`` centred at ``size // 2``."""
    x = torch.arange(size, dtype=torch.float64)
    c = size // 2
    r2 = (x[None, :] - c) ** 2 + (x[:, None] - c) ** 2
    return torch.exp(-4 * math.log(2) * r2 / fwhm**2).float()


def sampling_grid(saliency: Tensor, padding: int, fwhm: float, size: tuple[int, int]) -> Tensor:
    """Saliency ``(B, 1, G, G)`` -> ``grid_sample`` grid ``(B, H, W, 2)`` for the output ``size``."""
    b, _, g, _ = saliency.shape
    padded = F.pad(saliency, (padding,) * 4, mode="replicate")
    n = g + 2 * padding
    pos = (torch.arange(n, dtype=saliency.dtype, device=saliency.device) - padding) / (g - 1.0)
    xs, ys = pos.view(1, 1, 1, n).expand_as(padded), pos.view(1, 1, n, 1).expand_as(padded)
    kernel = gaussian_window(2 * padding + 1, fwhm).to(saliency).view(1, 1, 2 * padding + 1, 2 * padding + 1)
    stack = torch.cat([padded, padded * xs, padded * ys], dim=0)  # (3B, 1, n, n)
    filtered = F.conv2d(stack, kernel).view(3, b, g, g)
    grid = torch.stack([filtered[1] / filtered[0], filtered[2] / filtered[0]], dim=1) * 2 - 1
    grid = F.interpolate(grid.clamp(-1, 1), size=size, mode="bilinear", align_corners=True)
    return grid.permute(0, 2, 3, 1)


def zoom_view(images: Tensor, features: Tensor, cfg: SaliencyZoomConfig, modes: Tensor, uniforms: Tensor) -> Tensor:
    """The zoomed batch ``(B, 3, H, W)`` for the given per-image modes and per-position uniforms."""
    with torch.no_grad():
        h, w = images.shape[-2:]
        size = (REFERENCE_SIZE, REFERENCE_SIZE) if cfg.zoom_size == "reference" else (h, w)
        a = F.interpolate(features.detach().float().sum(dim=1, keepdim=True), size=size, mode="bilinear",
                          align_corners=True)
        s = F.interpolate(a, size=cfg.grid_size, mode="bilinear", align_corners=True)
        peak = s.amax(dim=(2, 3), keepdim=True)
        d = torch.where(peak > 0, s / torch.where(peak > 0, peak, torch.ones_like(peak)), torch.zeros_like(s))
        saliency = saliency_map(d, modes, uniforms, cfg.base_ratio, cfg.radius)
        grid = sampling_grid(saliency, cfg.padding, cfg.fwhm, (h, w))
        return F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="zeros",
                             align_corners=False)


class SaliencyZoom(ViewWrapper):
    def __init__(self, cfg: SaliencyZoomConfig, inner):
        super().__init__(inner)
        self.cfg = cfg

    def make_views(self, inp: AggregationInput) -> dict[str, Tensor]:
        features = self.stage_features(inp, self.cfg.stage, "saliency_zoom")
        b, dev, g = inp.image.shape[0], inp.image.device, self.cfg.grid_size
        modes = torch.randint(0, 3, (b,), device=dev)
        uniforms = torch.rand(b, g * g, device=dev)
        return {"zoom": zoom_view(inp.image, features, self.cfg, modes, uniforms)}


def build_saliency_zoom(cfg: SaliencyZoomConfig, ctx: BuildContext) -> SaliencyZoom:
    """CHN's saliency-sampler zoom driven by a stage's peak responses: a training view, around any aggregation."""
    check_stage("saliency_zoom", cfg.stage, ctx)
    return SaliencyZoom(cfg, ctx.build(cfg.inner))


def _example():
    return view_example({"zoom_size": "input", "grid_size": 7, "padding": 3}, "zoom")


def components(register):
    register("aggregation", "saliency_zoom", build_saliency_zoom, config=SaliencyZoomConfig, example=_example)
