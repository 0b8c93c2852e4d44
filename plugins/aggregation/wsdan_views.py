"""``wsdan_views``: WS-DAN attention cropping and dropping as a training augmentation, around any aggregation.

The wrapper runs its ``inner`` aggregation unchanged (same descriptors in train and eval) and, in training
mode, adds ``extras["views"] = {"crop": (B, 3, H, W), "drop": (B, 3, H, W)}``: two augmented copies of the
input image made from the attention maps the aggregation receives (any attention with maps: WS-DAN parts,
SEMICON's SEM, ...). Computed without gradient:

1. per image, two maps are drawn (with replacement) with probability ∝ ``sqrt(Σ_hw A_m)`` (L1-normalised;
   uniform when every map is zero): the first for cropping, the second for dropping;
2. **crop**: upsample the map to the image size, keep the bounding box of the pixels ``>= θ_c·max(A)`` with
   ``θ_c ~ U(crop_threshold)``, pad it by ``padding`` × the image size on each side, crop and resize
   (bilinear) back to ``(H, W)``;
3. **drop**: zero the image where the upsampled map is ``> θ_d·max(A)``, ``θ_d ~ U(drop_threshold)``
   (the pixels kept are those ``< θ_d·max``).

Randomness comes from torch's global generator (seeded by the trainer). The views only become training
signal when the model encodes them and a loss reads their outputs: the model-side hook that does this is
described in docs/methods/gdfnet.md ("WS-DAN views"); ``cross_entropy`` with ``views = ["crop", "drop"]``
then averages the classifier loss over the raw image and both views.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor

from hashkit.errors import ContractError
from hashkit.interfaces import Aggregation, AggregationInput, AggregationOutput, BuildContext, ComponentRef, nested
from hashkit_plugins.aggregation.bilinear_pooling import maps_example


def _unit_interval_pair(inst, attribute, value):
    lo, hi = value
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f"'{attribute.name}' must be (low, high) with 0 <= low <= high <= 1, found {value}")


@attrs.frozen
class WsdanViewsConfig:
    #: the wrapped aggregation (a nested component: its registered ``name`` and its parameters)
    inner: ComponentRef = nested("aggregation", default="bap")
    #: θ_c range, as a fraction of the map's maximum (WS-DAN: 0.4-0.6)
    crop_threshold: tuple[float, float] = attrs.field(default=(0.4, 0.6), validator=_unit_interval_pair)
    #: θ_d range (WS-DAN: 0.2-0.5)
    drop_threshold: tuple[float, float] = attrs.field(default=(0.2, 0.5), validator=_unit_interval_pair)
    #: bounding-box padding as a fraction of the image height / width (WS-DAN: 0.1)
    padding: float = attrs.field(default=0.1, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)])


def sample_view_maps(maps: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``(B, M, h, w) -> (B, 2, h, w)``: per image two maps drawn ∝ sqrt of their sums (crop, drop)."""
    weights = maps.detach().float().sum(dim=(2, 3)).clamp_min(0).sqrt()
    empty = weights.sum(dim=1, keepdim=True) <= 0
    weights = torch.where(empty, torch.ones_like(weights), weights)
    idx = torch.multinomial(weights / weights.sum(dim=1, keepdim=True), 2, replacement=True, generator=generator)
    return torch.gather(maps, 1, idx[:, :, None, None].expand(-1, -1, *maps.shape[2:]))


def _upsampled(maps: Tensor, size: tuple[int, int]) -> Tensor:
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


def attention_crop(images: Tensor, maps: Tensor, thresholds: Tensor, padding: float = 0.1) -> Tensor:
    """``images (B, 3, H, W)``, ``maps (B, 1, h, w)``, ``thresholds (B,)`` fractions -> crops ``(B, 3, H, W)``."""
    h, w = images.shape[-2:]
    up = _upsampled(maps.float(), (h, w))[:, 0]
    limit = thresholds.view(-1, 1, 1) * maps.float().amax(dim=(1, 2, 3)).view(-1, 1, 1)
    mask = up >= limit
    crops = []
    for i in range(images.shape[0]):  # boxes differ per image
        rows = mask[i].any(dim=1).nonzero()
        cols = mask[i].any(dim=0).nonzero()
        if len(rows) == 0:  # nothing above the threshold: keep the whole image
            crops.append(images[i : i + 1])
            continue
        top = max(int(rows.min()) - int(padding * h), 0)
        bottom = min(int(rows.max()) + int(padding * h), h)
        left = max(int(cols.min()) - int(padding * w), 0)
        right = min(int(cols.max()) + int(padding * w), w)
        bottom, right = max(bottom, top + 1), max(right, left + 1)
        crops.append(_upsampled(images[i : i + 1, :, top:bottom, left:right], (h, w)))
    return torch.cat(crops).to(images.dtype)


def attention_drop(images: Tensor, maps: Tensor, thresholds: Tensor) -> Tensor:
    """``images (B, 3, H, W)``, ``maps (B, 1, h, w)``, ``thresholds (B,)`` -> images zeroed where the map
    exceeds ``threshold · max``."""
    up = _upsampled(maps.float(), images.shape[-2:])
    limit = thresholds.view(-1, 1, 1, 1) * maps.float().amax(dim=(1, 2, 3)).view(-1, 1, 1, 1)
    return images * (up < limit).to(images.dtype)


def wsdan_views(images: Tensor, maps: Tensor, cfg: WsdanViewsConfig,
                generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """The crop and drop views of a batch (see the module docstring), without gradient."""
    with torch.no_grad():
        chosen = sample_view_maps(maps, generator)
        b = images.shape[0]

        def draw(lo_hi):
            lo, hi = lo_hi
            return lo + (hi - lo) * torch.rand(b, generator=generator, device=images.device)

        return {
            "crop": attention_crop(images, chosen[:, :1], draw(cfg.crop_threshold), cfg.padding),
            "drop": attention_drop(images, chosen[:, 1:], draw(cfg.drop_threshold)),
        }


class WsdanViews(Aggregation):
    def __init__(self, cfg: WsdanViewsConfig, inner: Aggregation):
        super().__init__()
        self.cfg = cfg
        self.inner = inner
        self.descriptor_dims = dict(inner.descriptor_dims)

    def forward(self, inp: AggregationInput) -> AggregationOutput:
        out = self.inner(inp)
        if self.training and inp.image is not None and inp.maps is not None:
            out.extras["views"] = wsdan_views(inp.image, inp.maps, self.cfg)
        return out


def build_wsdan_views(cfg: WsdanViewsConfig, ctx: BuildContext) -> WsdanViews:
    """WS-DAN attention crop / drop views (training extras) around any inner aggregation."""
    if ctx.num_maps < 1:
        raise ContractError("wsdan_views needs attention maps: add an attention component with maps "
                            "(e.g. attention_parts) to [[model.attention]]")
    return WsdanViews(cfg, ctx.build(cfg.inner))


def components(register):
    register("aggregation", "wsdan_views", build_wsdan_views, config=WsdanViewsConfig, example=maps_example)
