"""``cub200``: CUB-200-2011 from its official files (query = test, database = train).

Reads, under ``root`` (the ``CUB_200_2011`` directory): ``images.txt`` (``<id> <relative path>``),
``image_class_labels.txt`` (``<id> <class id 1..200>``), ``train_test_split.txt`` (``<id> <1 = train|0>``),
optionally ``classes.txt`` (names); images under ``images/``. Label = class id - 1; order = ``images.txt``.
Official sizes: 200 classes, 5,994 train, 5,794 test.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from hashkit.errors import DataError
from hashkit.interfaces import BuildContext, RetrievalData
from hashkit_plugins.datasets._files import (dataset_example, parse_int, read_rows, require, write_lines,
                                             write_tiny_image)
from hashkit_plugins.datasets._fine_grained import FineGrainedConfig, finish, root_of

OFFICIAL = {"train": 5994, "query": 5794, "classes": 200}


@attrs.frozen
class Cub200Config(FineGrainedConfig):
    pass


def id_table(path: Path, what: str) -> dict[str, str]:
    """``<id> <value>`` rows as a dict (ids are strings: NABirds uses UUIDs); duplicate ids are errors."""
    table: dict[str, str] = {}
    for image_id, value in read_rows(path, 2, maxsplit=1):
        if image_id in table:
            raise DataError(f"{path}: {what} id {image_id!r} appears twice")
        table[image_id] = value
    return table


def read_id_layout(name: str, root: Path):
    """The CUB/NABirds layout: ``[(image id, relative path, class id, is_train)]`` in ``images.txt`` order."""
    images, labels, split = require(name, root, "images.txt", "image_class_labels.txt", "train_test_split.txt")
    paths = id_table(images, "image")
    class_of = id_table(labels, "image")
    flag_of = id_table(split, "image")
    rows = []
    for image_id, rel in paths.items():
        for table, path in ((class_of, labels), (flag_of, split)):
            if image_id not in table:
                raise DataError(f"dataset {name!r}: image id {image_id!r} of images.txt is missing from {path}")
        flag = flag_of[image_id]
        if flag not in ("0", "1"):
            raise DataError(f"{split}: is_training flag of image {image_id!r} must be 0 or 1, found {flag!r}")
        rows.append((image_id, rel, parse_int(class_of[image_id], labels, "class id"), flag == "1"))
    return rows


def build_cub200(cfg: Cub200Config, ctx: BuildContext) -> RetrievalData:
    """CUB-200-2011 from images.txt / image_class_labels.txt / train_test_split.txt (query = test)."""
    root = root_of("cub200", cfg)
    rows = read_id_layout("cub200", root)
    num_classes = max((c for _, _, c, _ in rows), default=0)
    names = [str(c) for c in range(1, num_classes + 1)]
    if (root / "classes.txt").exists():
        table = id_table(root / "classes.txt", "class")
        names = [table.get(str(c), str(c)) for c in range(1, num_classes + 1)]
    train = ([f"images/{r}" for _, r, _, t in rows if t], [c - 1 for _, _, c, t in rows if t])
    test = ([f"images/{r}" for _, r, _, t in rows if not t], [c - 1 for _, _, c, t in rows if not t])
    return finish("cub200", cfg, root, names, train, test, OFFICIAL)


def write_miniature(tmp: Path) -> dict:
    """A miniature CUB_200_2011 tree: 3 classes x 3 images, ids 1..9, image 3k+1 of each class is a test image."""
    root = tmp / "CUB_200_2011"
    images, labels, split, classes = [], [], [], []
    for c in range(1, 4):
        folder = f"{c:03d}.Bird_{c}"
        classes.append(f"{c} {folder}")
        for j in range(3):
            image_id = (c - 1) * 3 + j + 1
            rel = f"{folder}/Bird_{c}_{j:04d}.jpg"
            write_tiny_image(root / "images" / rel, image_id)
            images.append(f"{image_id} {rel}")
            labels.append(f"{image_id} {c}")
            split.append(f"{image_id} {0 if j == 0 else 1}")
    write_lines(root / "images.txt", images)
    write_lines(root / "image_class_labels.txt", labels)
    write_lines(root / "train_test_split.txt", split)
    write_lines(root / "classes.txt", classes)
    return {"root": str(root), "expected_counts": {"train": 6, "query": 3, "classes": 3}}


def components(register):
    register("dataset", "cub200", build_cub200, config=Cub200Config, example=dataset_example(write_miniature))
