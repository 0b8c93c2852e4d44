"""Encoding query images in the service: the model of one code length, its eval transform and its maps.

:class:`QueryEncoder` is shared by the request threads; forward passes run one at a time (a lock), in batches
of up to ``max_batch`` images of one request. A model whose components declare ``eval_batch_dependent``
(:mod:`hashkit.model.capabilities`; SEM with ``sigma = "batch"``) encodes each image alone instead, so a
query's code never depends on what else was uploaded with it, and equals ``hashkit search --query IMAGE``.
"""

from __future__ import annotations

import base64
import io
import threading
from typing import Sequence

import numpy as np
import torch


class QueryEncoder:
    """Images (PIL, RGB) -> packed codes and attention overlays with one loaded run (:class:`LoadedRun`)."""

    def __init__(self, loaded, max_batch: int = 16):
        from hashkit.data.transforms import build_transform
        from hashkit.gallery.overlay import display_transform, map_names
        from hashkit.model.capabilities import batch_dependent_components

        self.model = loaded.model.cpu().eval()
        self.code_length = int(loaded.code_length)
        self.recipe_name = loaded.recipe.name
        self.run_dir = loaded.run_dir
        section = loaded.recipe.data.eval_transform
        self.crop = section.crop
        self.transform = build_transform(section)
        self.view = display_transform(section)
        self.batch_dependent = batch_dependent_components(self.model)
        self.max_batch = 1 if self.batch_dependent else max(1, int(max_batch))
        self.map_names = map_names(self.model)
        self._lock = threading.Lock()

    def encode(self, images: Sequence) -> np.ndarray:
        """Packed codes ``uint8 (n, ceil(L/8))`` of PIL images, in order."""
        from hashkit.codes.packing import pack_codes

        tensors = [self.transform(image) for image in images]
        out = []
        for start in range(0, len(tensors), self.max_batch):
            batch = torch.stack(tensors[start:start + self.max_batch])
            with self._lock, torch.no_grad():
                out.append(self.model.encode(batch))
        return pack_codes(torch.cat(out)).numpy() if out else np.zeros((0, (self.code_length + 7) // 8), np.uint8)

    def overlays(self, image, opacity: float = 0.5) -> list[dict[str, str]]:
        """``[{"name", "image": PNG data URL}]``: the image as the model sees it, then one overlay per map
        (computed on this image alone); empty for a model without maps."""
        from hashkit.gallery.overlay import heatmaps, overlay

        if not self.map_names:
            return []
        shown = self.view(image)
        with self._lock:
            maps = heatmaps(self.model, self.transform(image)[None], self.crop)
        pictures = [("input", shown)] + [(name, overlay(shown, heat.numpy(), opacity))
                                         for name, heat in zip(self.map_names, maps[0])]
        return [{"name": name, "image": png_data_url(picture)} for name, picture in pictures]


def png_data_url(picture) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
