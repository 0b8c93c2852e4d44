"""``stanford_dogs``: Stanford Dogs (120 breeds) from its official lists (query = test, database = train).

Two layouts under ``root`` (``lists = "auto"`` picks the first present):

- ``mat`` (the official distribution): ``lists/train_list.mat`` and ``lists/test_list.mat`` with fields
  ``file_list`` (paths relative to ``Images/``) and ``labels`` (1-based); images ``Images/<wnid>-<breed>/...``.
  Needs scipy (optional dependency).
- ``txt`` (SEMICON's hand-converted lists): ``train.txt`` and ``test.txt`` with ``<relative path> <1-based
  label>``; images under ``Images/`` (or ``images/`` as in SEMICON's loader).

Class names are the breed folders' names. Official sizes: 120 classes, 12,000 train, 8,580 test. The images
come from ImageNet, so ImageNet-pretrained backbones have seen them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import attrs
import numpy as np

from hashkit.errors import DataError
from hashkit.interfaces import BuildContext, RetrievalData
from hashkit_plugins.datasets._files import (dataset_example, folder_names, load_mat, read_label_list, require,
                                             write_lines, write_tiny_image)
from hashkit_plugins.datasets._fine_grained import FineGrainedConfig, finish, root_of

OFFICIAL = {"train": 12000, "query": 8580, "classes": 120}


@attrs.frozen
class StanfordDogsConfig(FineGrainedConfig):
    #: which split lists to read: the official .mat files, SEMICON-style text lists, or whichever is present
    lists: Literal["auto", "mat", "txt"] = "auto"


def _read_mat(path: Path) -> tuple[list[str], list[int]]:
    mat = load_mat("stanford_dogs", path)
    for key in ("file_list", "labels"):
        if key not in mat:
            raise DataError(f"{path}: no field {key!r} (expected the official lists/*_list.mat)")
    files = [str(f if isinstance(f, str) else f.item()) for f in np.atleast_1d(mat["file_list"])]
    labels = [int(x) - 1 for x in np.atleast_1d(mat["labels"])]
    if len(files) != len(labels):
        raise DataError(f"{path}: {len(files)} files but {len(labels)} labels")
    return [f"Images/{f}" for f in files], labels


def build_stanford_dogs(cfg: StanfordDogsConfig, ctx: BuildContext) -> RetrievalData:
    """Stanford Dogs (120 breeds) from lists/{train,test}_list.mat or train.txt/test.txt (query = test)."""
    root = root_of("stanford_dogs", cfg)
    mode = cfg.lists
    if mode == "auto":
        mode = "mat" if (root / "lists" / "train_list.mat").exists() or not (root / "train.txt").exists() else "txt"
    if mode == "mat":
        train_file, test_file = require("stanford_dogs", root, "lists/train_list.mat", "lists/test_list.mat")
        train, test = _read_mat(train_file), _read_mat(test_file)
    else:
        train_file, test_file = require("stanford_dogs", root, "train.txt", "test.txt")
        prefix = "images/" if (root / "images").is_dir() and not (root / "Images").is_dir() else "Images/"
        train, test = read_label_list(train_file, prefix, 1), read_label_list(test_file, prefix, 1)
    labels = train[1] + test[1]
    num_classes = max(labels, default=-1) + 1
    names = folder_names(train[0] + test[0], labels, num_classes)
    return finish("stanford_dogs", cfg, root, names, train, test, OFFICIAL)


def write_miniature(tmp: Path) -> dict:
    """A miniature Stanford Dogs tree with SEMICON-style text lists: 2 breeds, 2 train + 1 test image each."""
    root = tmp / "StanfordDogs"
    train, test = [], []
    for c, breed in enumerate(("n02085620-Chihuahua", "n02085782-Japanese_spaniel")):
        for j in range(3):
            rel = f"{breed}/{breed.split('-')[0]}_{j}.jpg"
            write_tiny_image(root / "Images" / rel, c * 3 + j)
            (test if j == 2 else train).append(f"{rel} {c + 1}")
    write_lines(root / "train.txt", train)
    write_lines(root / "test.txt", test)
    return {"root": str(root), "expected_counts": {"train": 4, "query": 2, "classes": 2}}


def components(register):
    register("dataset", "stanford_dogs", build_stanford_dogs, config=StanfordDogsConfig,
             example=dataset_example(write_miniature))
