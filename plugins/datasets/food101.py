"""``food101``: Food-101 from its official files (query = test, database = train).

Reads, under ``root`` (the ``food-101`` directory): ``meta/classes.txt`` (101 folder names; class index =
line order, the same order as ``meta/labels.txt`` that SEMICON reads), ``meta/train.txt`` and
``meta/test.txt`` (``<class>/<id>`` without extension); images ``images/<class>/<id>.jpg``. Every line's folder
must be a listed class. Official sizes: 101 classes, 75,750 train, 25,250 test.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from hashkit.errors import DataError
from hashkit.interfaces import BuildContext, RetrievalData
from hashkit_plugins.datasets._files import dataset_example, read_rows, require, write_lines, write_tiny_image
from hashkit_plugins.datasets._fine_grained import FineGrainedConfig, finish, root_of

OFFICIAL = {"train": 75750, "query": 25250, "classes": 101}


@attrs.frozen
class Food101Config(FineGrainedConfig):
    pass


def _read_split(path: Path, index: dict[str, int]) -> tuple[list[str], list[int]]:
    items, labels = [], []
    for (entry,) in read_rows(path, 1):
        folder = entry.split("/", 1)[0]
        if folder not in index or "/" not in entry:
            raise DataError(f"{path}: {entry!r} is not <class>/<id> with a class of meta/classes.txt")
        items.append(f"images/{entry}.jpg")
        labels.append(index[folder])
    return items, labels


def build_food101(cfg: Food101Config, ctx: BuildContext) -> RetrievalData:
    """Food-101 from meta/classes.txt, meta/train.txt and meta/test.txt (query = test)."""
    root = root_of("food101", cfg)
    classes, train_list, test_list = require("food101", root, "meta/classes.txt", "meta/train.txt", "meta/test.txt")
    names = [row[0] for row in read_rows(classes, 1)]
    index = {n: i for i, n in enumerate(names)}
    train, test = _read_split(train_list, index), _read_split(test_list, index)
    return finish("food101", cfg, root, names, train, test, OFFICIAL)


def write_miniature(tmp: Path) -> dict:
    """A miniature food-101 tree: 3 classes, 3 train + 1 test image each."""
    root = tmp / "food-101"
    names = ["apple_pie", "baby_back_ribs", "waffles"]
    train, test = [], []
    for c, name in enumerate(names):
        for j in range(4):
            entry = f"{name}/{100 + c * 10 + j}"
            write_tiny_image(root / "images" / f"{entry}.jpg", c * 4 + j)
            (test if j == 3 else train).append(entry)
    write_lines(root / "meta" / "classes.txt", names)
    write_lines(root / "meta" / "labels.txt", [n.replace("_", " ").capitalize() for n in names])
    write_lines(root / "meta" / "train.txt", train)
    write_lines(root / "meta" / "test.txt", test)
    return {"root": str(root), "expected_counts": {"train": 9, "query": 3, "classes": 3}}


def components(register):
    register("dataset", "food101", build_food101, config=Food101Config, example=dataset_example(write_miniature))
