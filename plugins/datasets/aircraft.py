"""``aircraft``: FGVC-Aircraft 2013b at variant level (query = test, database = trainval).

Reads, under ``root`` (the ``fgvc-aircraft-2013b`` directory): ``data/variants.txt`` (one name per line;
class index = line index), ``data/images_variant_trainval.txt`` and ``data/images_variant_test.txt``
(``<7-digit id> <variant name>``, split on the **first** space only since names contain spaces); images
``data/images/<id>.jpg``. The copyright banner at the bottom of each image is not cropped (as SEMICON).
Official sizes: 100 variants, 6,667 trainval, 3,333 test.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from hashkit.errors import DataError
from hashkit.interfaces import BuildContext, RetrievalData
from hashkit_plugins.datasets._files import dataset_example, read_rows, require, write_lines, write_tiny_image
from hashkit_plugins.datasets._fine_grained import FineGrainedConfig, finish, root_of

OFFICIAL = {"train": 6667, "query": 3333, "classes": 100}


@attrs.frozen
class AircraftConfig(FineGrainedConfig):
    pass


def _read_split(path: Path, index: dict[str, int]) -> tuple[list[str], list[int]]:
    items, labels = [], []
    for image_id, variant in read_rows(path, 2, maxsplit=1):
        if variant not in index:
            raise DataError(f"{path}: variant {variant!r} of image {image_id} is not in variants.txt")
        items.append(f"data/images/{image_id}.jpg")
        labels.append(index[variant])
    return items, labels


def build_aircraft(cfg: AircraftConfig, ctx: BuildContext) -> RetrievalData:
    """FGVC-Aircraft variants (100) from the official lists (query = test, database = trainval)."""
    root = root_of("aircraft", cfg)
    variants, trainval, test = require("aircraft", root, "data/variants.txt", "data/images_variant_trainval.txt",
                                       "data/images_variant_test.txt")
    names = [line.strip() for line in variants.read_text(encoding="utf-8").splitlines() if line.strip()]
    index = {n: i for i, n in enumerate(names)}
    train, query = _read_split(trainval, index), _read_split(test, index)
    return finish("aircraft", cfg, root, names, train, query, OFFICIAL)


def write_miniature(tmp: Path) -> dict:
    """A miniature fgvc-aircraft-2013b tree: 3 variants (names with spaces), 2 trainval + 1 test image each."""
    root = tmp / "fgvc-aircraft-2013b"
    names = ["707-320", "Cessna 172", "DHC-6 Twin Otter"]
    trainval, test = [], []
    for c, name in enumerate(names):
        for j in range(3):
            image_id = f"{1000000 + c * 10 + j:07d}"
            write_tiny_image(root / "data" / "images" / f"{image_id}.jpg", c * 3 + j)
            (test if j == 2 else trainval).append(f"{image_id} {name}")
    write_lines(root / "data" / "variants.txt", names)
    write_lines(root / "data" / "images_variant_trainval.txt", trainval)
    write_lines(root / "data" / "images_variant_test.txt", test)
    return {"root": str(root), "expected_counts": {"train": 6, "query": 3, "classes": 3}}


def components(register):
    register("dataset", "aircraft", build_aircraft, config=AircraftConfig, example=dataset_example(write_miniature))
