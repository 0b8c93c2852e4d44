"""``stanford_cars``: Stanford Cars (196 classes) from its official annotations (query = test, database = train).

Layouts under ``root`` (``layout = "auto"`` picks the first present, in this order):

- ``annos``: ``cars_annos.mat`` (fields ``annotations`` with ``relative_im_path``, ``class`` 1-based and
  ``test`` 0/1, and ``class_names``) + ``car_ims/``;
- ``devkit``: ``devkit/cars_meta.mat`` (``class_names``), ``devkit/cars_train_annos.mat`` (``fname``,
  ``class``) and ``cars_test_annos_withlabels.mat`` (in ``root`` or ``devkit/``) + ``cars_train/``,
  ``cars_test/``;
- ``txt``: ``train.txt`` and ``test.txt`` with ``<path relative to root> <1-based class>`` (e.g. written
  once from either .mat layout on a machine with scipy).

The .mat layouts need scipy (optional dependency). Not used by SEMICON. Official sizes: 196 classes,
8,144 train, 8,041 test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import attrs
import numpy as np

from hashkit.errors import DataError
from hashkit.interfaces import BuildContext, RetrievalData
from hashkit_plugins.datasets._files import (dataset_example, load_mat, read_label_list, require, write_lines,
                                             write_tiny_image)
from hashkit_plugins.datasets._fine_grained import FineGrainedConfig, finish, root_of

OFFICIAL = {"train": 8144, "query": 8041, "classes": 196}


@attrs.frozen
class StanfordCarsConfig(FineGrainedConfig):
    layout: Literal["auto", "annos", "devkit", "txt"] = "auto"


def _field(annos, name: str, path: Path) -> list:
    if annos.dtype.names is None or name not in annos.dtype.names:
        raise DataError(f"{path}: annotations have no field {name!r}")
    return [v.item() if hasattr(v, "item") else v for v in np.atleast_1d(annos[name])]


def _class_names(path: Path) -> list[str]:
    mat = load_mat("stanford_cars", path)
    if "class_names" not in mat:
        raise DataError(f"{path}: no field 'class_names'")
    return [str(n) for n in np.atleast_1d(mat["class_names"])]


def _annotations(path: Path):
    mat = load_mat("stanford_cars", path)
    if "annotations" not in mat:
        raise DataError(f"{path}: no field 'annotations'")
    return np.atleast_1d(mat["annotations"])


def _detect(root: Path) -> str:
    if (root / "cars_annos.mat").exists():
        return "annos"
    if (root / "devkit").is_dir():
        return "devkit"
    if (root / "train.txt").exists() or (root / "test.txt").exists():
        return "txt"
    return "annos"  # reports the missing official file


def build_stanford_cars(cfg: StanfordCarsConfig, ctx: BuildContext) -> RetrievalData:
    """Stanford Cars (196 classes) from cars_annos.mat, the devkit .mat files or train/test.txt (query = test)."""
    root = root_of("stanford_cars", cfg)
    layout = _detect(root) if cfg.layout == "auto" else cfg.layout
    names: list[str] | None = None
    if layout == "annos":
        (path,) = require("stanford_cars", root, "cars_annos.mat")
        annos = _annotations(path)
        rel, cls, is_test = (_field(annos, k, path) for k in ("relative_im_path", "class", "test"))
        names = _class_names(path)
        train = ([r for r, t in zip(rel, is_test) if not t], [int(c) - 1 for c, t in zip(cls, is_test) if not t])
        test = ([r for r, t in zip(rel, is_test) if t], [int(c) - 1 for c, t in zip(cls, is_test) if t])
    elif layout == "devkit":
        test_rel = ("cars_test_annos_withlabels.mat" if (root / "cars_test_annos_withlabels.mat").exists()
                    else "devkit/cars_test_annos_withlabels.mat")
        meta, train_path, test_path = require("stanford_cars", root, "devkit/cars_meta.mat",
                                              "devkit/cars_train_annos.mat", test_rel)
        names = _class_names(meta)
        splits = []
        for path, folder in ((train_path, "cars_train"), (test_path, "cars_test")):
            annos = _annotations(path)
            splits.append(([f"{folder}/{f}" for f in _field(annos, "fname", path)],
                           [int(c) - 1 for c in _field(annos, "class", path)]))
        train, test = splits
    else:
        train_path, test_path = require("stanford_cars", root, "train.txt", "test.txt")
        train, test = read_label_list(train_path, "", 1), read_label_list(test_path, "", 1)
    num_classes = len(names) if names else max(train[1] + test[1], default=-1) + 1
    names = names or [str(c + 1) for c in range(num_classes)]
    return finish("stanford_cars", cfg, root, names, train, test, OFFICIAL)


def write_miniature(tmp: Path) -> dict:
    """A miniature Stanford Cars tree with text lists: 2 classes, 2 train + 2 test images each."""
    root = tmp / "stanford_cars"
    train, test = [], []
    for i in range(8):
        rel = f"car_ims/{i + 1:06d}.jpg"
        write_tiny_image(root / rel, i)
        (test if i % 2 else train).append(f"{rel} {i // 4 + 1}")
    write_lines(root / "train.txt", train)
    write_lines(root / "test.txt", test)
    return {"root": str(root), "expected_counts": {"train": 4, "query": 4, "classes": 2}}


def components(register):
    register("dataset", "stanford_cars", build_stanford_cars, config=StanfordCarsConfig,
             example=dataset_example(write_miniature))
