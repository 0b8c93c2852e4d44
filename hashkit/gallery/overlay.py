"""Attention overlays: a model's attention maps, upsampled to the image and blended over it in colour.

Used by ``hashkit attention``, the gallery (the query's maps beside its results) and the search service.

- :func:`map_names`: names of the concatenated maps of ``model.attention`` (``AttentionOutput.maps``), in
  forward order (SEMICON's ``sem``: ``stage1..stage3``);
- :func:`heatmaps`: ``(B, 3, H, W)`` normalised images -> ``(B, K, size, size)`` maps in ``[0, 1]``, each
  upsampled bilinearly and divided by its own maximum (an all-zero map stays zero), or ``None`` for a model
  without maps;
- :func:`overlay`: blend one ``(size, size)`` map over a PIL RGB image of that size with a matplotlib colormap.

Maps are computed by the model in eval mode on the batch given (SEM with ``sigma = "batch"`` normalises over
the batch, so pass one image at a time for batch-independent pictures).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image
    from torch import Tensor, nn


def map_names(model: "nn.Module") -> list[str]:
    """Names of the concatenated maps of ``model.attention``, in forward order (empty without maps)."""
    names: list[str] = []
    for i, att in enumerate(getattr(model, "attention", ())):
        k = int(getattr(att, "num_maps", 0) or 0)
        own = tuple(getattr(att, "map_names", ()) or ())
        label = getattr(att, "registered_name", None) or f"attention{i}"
        names += list(own) if len(own) == k else [f"{label}_{j + 1}" for j in range(k)]
    if len(set(names)) != len(names):  # two attentions with the same map names
        names = [f"{n}_{i}" for i, n in enumerate(names)]
    return names


def heatmaps(model: "nn.Module", images: "Tensor", size: int) -> "Tensor | None":
    """Maps ``(B, K, size, size)`` in ``[0, 1]`` of ``images`` ``(B, 3, H, W)`` (model in eval mode, no grad),
    each scaled by its own maximum; ``None`` when the model produces no maps."""
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        maps = model(images).maps
    if maps is None:
        return None
    maps = F.interpolate(maps.float(), size=(size, size), mode="bilinear", align_corners=False).clamp_min(0).cpu()
    peak = maps.amax(dim=(2, 3), keepdim=True)
    return torch.where(peak > 0, maps / peak.clamp_min(torch.finfo(maps.dtype).tiny), torch.zeros_like(maps))


def overlay(image: "Image.Image", heat, opacity: float = 0.5, colormap: str = "jet") -> "Image.Image":
    """Blend a map ``heat`` ``(h, w)`` in ``[0, 1]`` (already at the image's size) over a PIL RGB ``image``."""
    import matplotlib
    import numpy as np
    from PIL import Image

    rgb = matplotlib.colormaps[colormap](np.asarray(heat, dtype=np.float64))[..., :3]
    base = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    blend = (1 - opacity) * base + opacity * rgb
    return Image.fromarray((blend.clip(0, 1) * 255).round().astype(np.uint8))


def display_transform(section):
    """What the model sees of an image, as a PIL image: RGB, ``Resize(resize)``, ``CenterCrop(crop)`` of the
    recipe's eval transform section (the picture that overlays are drawn on)."""
    import torchvision.transforms as T

    from hashkit.data.transforms import ToRGB

    return T.Compose([ToRGB(), T.Resize(section.resize), T.CenterCrop(section.crop)])
