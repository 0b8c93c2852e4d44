"""``image_folder``: your own images, one folder per class.

Two layouts [inferred design]:

- explicit splits: ``<root>/<train_dir>/<class>/<image>`` and ``<root>/<query_dir>/<class>/<image>`` (used
  when ``<root>/<train_dir>`` exists); classes are the sorted folder names of the training split, and a query
  class missing from it is an error;
- one tree: ``<root>/<class>/<image>``, split per class with a seeded shuffle: ``round(query_fraction * n)``
  images of each class (at least one when the class has two or more) become queries, the rest training.

Database = train (the fine-grained protocol). Images are files whose suffix is in ``extensions``; item
order is sorted by path, so the split is stable across machines.
"""

from __future__ import annotations

import random
from pathlib import Path

import attrs

from hashkit.errors import DataError
from hashkit.interfaces import BuildContext, RetrievalData
from hashkit_plugins.datasets._files import dataset_example, write_tiny_image
from hashkit_plugins.datasets._fine_grained import FineGrainedConfig, finish, root_of


@attrs.frozen
class ImageFolderConfig(FineGrainedConfig):
    """``root`` holds the class folders (or ``train_dir`` and ``query_dir``); no split sizes by default."""

    train_dir: str = "train"
    query_dir: str = "query"
    #: one-tree layout: fraction of each class used as queries, and the split's seed
    query_fraction: float = attrs.field(default=0.2, validator=[attrs.validators.gt(0.0), attrs.validators.lt(1.0)])
    seed: int = 0
    extensions: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _scan(folder: Path, extensions: set[str]) -> dict[str, list[str]]:
    """``{class: [image paths relative to folder]}``, sorted."""
    classes: dict[str, list[str]] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = sorted(f.relative_to(folder).as_posix() for f in sub.rglob("*")
                       if f.is_file() and f.suffix.lower() in extensions)
        if files:
            classes[sub.name] = files
    return classes


def build_image_folder(cfg: ImageFolderConfig, ctx: BuildContext) -> RetrievalData:
    """Images in one folder per class, with train/query folders or a seeded per-class split."""
    root = root_of("image_folder", cfg)
    ext = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in cfg.extensions}
    if (root / cfg.train_dir).is_dir():
        train_tree = _scan(root / cfg.train_dir, ext)
        query_dir = root / cfg.query_dir
        if not query_dir.is_dir():
            raise DataError(f"dataset 'image_folder': {root / cfg.train_dir} exists but the query folder "
                            f"{query_dir} does not (set data.dataset.query_dir)")
        query_tree = _scan(query_dir, ext)
        names = sorted(train_tree)
        extra = sorted(set(query_tree) - set(train_tree))
        if extra:
            raise DataError(f"dataset 'image_folder': query classes {extra[:3]} have no folder in {root / cfg.train_dir}")
        train = ([f"{cfg.train_dir}/{p}" for c in names for p in train_tree[c]],
                 [i for i, c in enumerate(names) for _ in train_tree[c]])
        query = ([f"{cfg.query_dir}/{p}" for c in names for p in query_tree.get(c, [])],
                 [i for i, c in enumerate(names) for _ in query_tree.get(c, [])])
    else:
        tree = _scan(root, ext)
        names = sorted(tree)
        rng = random.Random(cfg.seed)
        train, query = ([], []), ([], [])
        for i, c in enumerate(names):
            files = list(tree[c])
            rng.shuffle(files)
            n_query = round(cfg.query_fraction * len(files))
            if len(files) >= 2:
                n_query = min(max(n_query, 1), len(files) - 1)
            for j, f in enumerate(sorted(files[:n_query]) + sorted(files[n_query:])):
                target = query if j < n_query else train
                target[0].append(f)
                target[1].append(i)
    if not names:
        raise DataError(f"dataset 'image_folder': no class folders with images ({', '.join(sorted(ext))}) in {root}")
    return finish("image_folder", cfg, root, names, train, query, official=None,
                  protocol="query=query split, database=train")


def write_miniature(tmp: Path) -> dict:
    """A miniature one-tree image folder: 3 classes x 5 PNG images (20 % queries = 1 per class)."""
    root = tmp / "folder"
    for c, name in enumerate(("cats", "dogs", "owls")):
        for j in range(5):
            write_tiny_image(root / name / f"{j}.png", c * 5 + j)
    return {"root": str(root), "expected_counts": {"train": 12, "query": 3, "classes": 3}}


def components(register):
    register("dataset", "image_folder", build_image_folder, config=ImageFolderConfig,
             example=dataset_example(write_miniature))
