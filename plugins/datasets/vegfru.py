"""``vegfru``: VegFru (200 vegetable + 92 fruit classes) from its official lists (query = test, database = train).

Reads, under ``root``: ``vegfru_list/vegfru_train.txt`` and ``vegfru_list/vegfru_test.txt``
(``<relative path> <0-based label>``); images under ``veg200_images/`` and ``fru92_images/`` at those paths.
As SEMICON, the database is the train list only (``vegfru_val.txt`` is not used). Class names are the
image folders' names. Official sizes: 292 classes, 29,200 train, 116,931 test.

Seen/unseen split (``seen_fraction``, as the DSH_Analysis study): ``z = floor(292 (1 - f))`` rounded up to a
multiple of 3 (15 / 45 / 75 at f = 0.95 / 0.85 / 0.75); the unseen classes are the **last 2z/3 vegetable
and the last z/3 fruit classes** (z = 15: vegetables 190-199 and fruits 287-291), and the label columns are
reordered to [seen vegetables, seen fruits, unseen vegetables, unseen fruits]. A class is a vegetable when
its images lie under ``veg200_images/``.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from hashkit.data.open_set import unseen_count
from hashkit.errors import DataError
from hashkit.interfaces import BuildContext, ClassSplit, RetrievalData
from hashkit_plugins.datasets._files import (dataset_example, folder_names, read_label_list, require, write_lines,
                                             write_tiny_image)
from hashkit_plugins.datasets._fine_grained import FineGrainedConfig, finish, root_of

OFFICIAL = {"train": 29200, "query": 116931, "classes": 292}


@attrs.frozen
class VegFruConfig(FineGrainedConfig):
    pass


def vegfru_classes(vegetables: list[int], fruits: list[int], seen_fraction: float) -> ClassSplit:
    """The study's VegFru split: z (a multiple of 3) unseen classes, the last 2z/3 vegetables and z/3 fruits."""
    z = unseen_count(len(vegetables) + len(fruits), seen_fraction, multiple_of=3)
    zv, zf = 2 * z // 3, z // 3
    if zv >= len(vegetables) or zf >= len(fruits):
        raise DataError(f"dataset 'vegfru': seen_fraction {seen_fraction} leaves no seen vegetable or fruit class")
    cut_v, cut_f = len(vegetables) - zv, len(fruits) - zf
    return ClassSplit(seen=tuple(vegetables[:cut_v] + fruits[:cut_f]),
                      unseen=tuple(vegetables[cut_v:] + fruits[cut_f:]), seen_fraction=seen_fraction,
                      rule=f"last {zv} vegetable and last {zf} fruit classes are unseen; columns reordered to "
                           "[seen vegetables, seen fruits, unseen vegetables, unseen fruits]")


def build_vegfru(cfg: VegFruConfig, ctx: BuildContext) -> RetrievalData:
    """VegFru (292 classes) from vegfru_list/vegfru_{train,test}.txt (query = test, database = train)."""
    root = root_of("vegfru", cfg)
    train_list, test_list = require("vegfru", root, "vegfru_list/vegfru_train.txt", "vegfru_list/vegfru_test.txt")
    train, test = read_label_list(train_list, "", 0), read_label_list(test_list, "", 0)
    num_classes = max(train[1] + test[1], default=-1) + 1
    if min(train[1] + test[1], default=0) < 0:
        raise DataError(f"{train_list}: labels must be 0-based class ids")
    names = folder_names(train[0] + test[0], train[1] + test[1], num_classes)
    veg = {label for item, label in zip(train[0] + test[0], train[1] + test[1]) if item.startswith("veg200_images/")}
    vegetables, fruits = sorted(veg), [c for c in range(num_classes) if c not in veg]
    return finish("vegfru", cfg, root, names, train, test, OFFICIAL,
                  class_split=lambda _num_classes, fraction: vegfru_classes(vegetables, fruits, fraction))


def write_miniature(tmp: Path) -> dict:
    """A miniature VegFru tree: 2 vegetable + 1 fruit classes, 2 train + 1 val + 2 test images each."""
    root = tmp / "vegfru"
    classes = ["veg200_images/carrot", "veg200_images/leek", "fru92_images/kiwi"]
    lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for c, folder in enumerate(classes):
        for j, split in enumerate(("train", "train", "val", "test", "test")):
            rel = f"{folder}/v_{c}_{j}.jpg"
            write_tiny_image(root / rel, c * 5 + j)
            lists[split].append(f"{rel} {c}")
    for split, lines in lists.items():
        write_lines(root / "vegfru_list" / f"vegfru_{split}.txt", lines)
    return {"root": str(root), "expected_counts": {"train": 6, "query": 6, "classes": 3}}


def components(register):
    register("dataset", "vegfru", build_vegfru, config=VegFruConfig, example=dataset_example(write_miniature))
