"""Retrieval galleries: for each query, the query, its attention overlays and its top-k database images.

One row per query: the query image (blue frame) with its class, one overlay per attention map of the model
(:mod:`hashkit.gallery.overlay`; the mean of the maps when there are more than ``max_maps``), then the top-k
database images by Hamming distance (ties by database index, as in the evaluation), each captioned with its
distance and class and framed green when it shares a class with the query, red when not (grey for an
outside query image, whose class is unknown). Images are shown as the model sees them (eval resize and
centre crop), enlarged to ``cell`` pixels.

Queries are dataset query items (:func:`dataset_rows`, codes as the run scored them) or image files
(:func:`image_rows`, each encoded alone, like ``hashkit search --query IMAGE``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import attrs
import numpy as np
from PIL import Image
from torch import Tensor, nn

from hashkit.codes.packing import pack_codes
from hashkit.gallery.grid import Cell, render_grid
from hashkit.gallery.overlay import display_transform, heatmaps, map_names, overlay
from hashkit.gallery.run_codes import RunCodes


@attrs.frozen
class GalleryOptions:
    #: database images per query
    k: int = attrs.field(default=8, validator=attrs.validators.ge(1))
    #: side of one picture in pixels
    cell: int = attrs.field(default=96, validator=attrs.validators.ge(16))
    opacity: float = attrs.field(default=0.5, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)])
    colormap: str = "jet"
    #: overlays per query; a model with more maps gets one overlay of their mean
    max_maps: int = attrs.field(default=3, validator=attrs.validators.ge(1))


def spread_indices(n: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``0..n-1`` (the first and the last included when count > 1)."""
    count = max(0, min(count, n))
    if count == 0:
        return []
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, count)})


def nearest(codes: RunCodes, queries: Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(positions (Q, k'), distances (Q, k'))`` of the nearest database rows of ±1 ``queries``."""
    from hashkit.search import ExactBackend

    backend = ExactBackend(codes.code_length)
    backend.add(pack_codes(codes.database).numpy())
    res = backend.knn(pack_codes(queries).numpy(), k)
    return res.ids, res.distances


def overlay_cells(model: nn.Module, image: Image.Image, tensor: Tensor, options: GalleryOptions) -> list[Cell]:
    """Overlay cells of one query image (computed alone, batch of one); empty for a model without maps."""
    names = map_names(model)
    maps = heatmaps(model, tensor[None], image.size[0]) if names else None
    if maps is None:
        return []
    maps = maps[0]
    if len(names) > options.max_maps:
        mean = maps.mean(0)
        peak = float(mean.max())
        maps, names = (mean / peak if peak > 0 else mean)[None], [f"mean of {len(names)} maps"]
    return [Cell(overlay(image, m.numpy(), options.opacity, options.colormap), (name,)) for name, m in zip(names, maps)]


def _result_cells(codes: RunCodes, positions, distances, query_labels: Tensor | None, view) -> list[Cell]:
    split = codes.database_split
    cells = []
    for pos, dist in zip(positions.tolist(), distances.tolist()):
        labels = codes.database_labels[pos]
        if query_labels is None:
            frame = "unknown"
        else:
            frame = "relevant" if float((query_labels > 0).float() @ (labels > 0).float()) > 0 else "irrelevant"
        cells.append(Cell(view(split.reader(split.items[pos])), (f"d={dist}", codes.label_name(labels)), frame))
    return cells


def dataset_rows(model: nn.Module, codes: RunCodes, indices: Sequence[int], section,
                 options: GalleryOptions) -> list[list[Cell]]:
    """Rows for query items ``indices`` of the run's query split (their codes as the run scored them)."""
    from hashkit.data.transforms import build_transform

    view, transform = display_transform(section), build_transform(section)
    positions, distances = nearest(codes, codes.query[list(indices)], options.k)
    rows = []
    for row, qi in enumerate(indices):
        image = codes.query_split.reader(codes.query_split.items[qi])
        shown = view(image)
        labels = codes.query_labels[qi]
        cells = [Cell(shown, ("query", codes.label_name(labels)), "query")]
        cells += overlay_cells(model, shown, transform(image), options)
        rows.append(cells + _result_cells(codes, positions[row], distances[row], labels, view))
    return rows


def image_rows(model: nn.Module, codes: RunCodes, images: Sequence[Path], section,
               options: GalleryOptions) -> list[list[Cell]]:
    """Rows for image files, each encoded alone with ``model`` (class unknown: grey frames)."""
    from hashkit.data.readers import FileImageReader
    from hashkit.data.transforms import build_transform

    view, transform = display_transform(section), build_transform(section)
    rows = []
    for path in images:
        image = FileImageReader(Path(path).parent)(Path(path).name)
        tensor = transform(image)
        code = model.encode(tensor[None])
        positions, distances = nearest(codes, code, options.k)
        shown = view(image)
        cells = [Cell(shown, ("query", Path(path).name), "query")]
        cells += overlay_cells(model, shown, tensor, options)
        rows.append(cells + _result_cells(codes, positions[0], distances[0], None, view))
    return rows


def render_gallery(rows: list[list[Cell]], codes: RunCodes, recipe_name: str, options: GalleryOptions
                   ) -> Image.Image:
    """The gallery picture of one code length."""
    split = len(rows[0]) - min(options.k, len(codes.database)) if rows else 0
    title = (f"{recipe_name}: {codes.code_length} bits, top {options.k} of {len(codes.database)} "
             f"{codes.database_kind} database codes by Hamming distance (green: same class, red: other)")
    return render_grid(rows, options.cell, title=title, split_after=split)
