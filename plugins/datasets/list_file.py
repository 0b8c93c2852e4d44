"""``list_file``: your own images listed in text files, multi-label allowed.

Each non-empty line is ``<relative path> <label>[ <label> ...]`` (whitespace-separated, 0-based integer labels;
the path has no spaces; lines starting with ``#`` are comments). Paths are relative to ``root``. Separate
files give the training, query and (optionally) database splits; without ``database_list`` the database is
the training split. With several labels per image, two images are relevant when they share one
(multi-hot targets). ``classes_file`` (one name per line) names the classes and fixes their number.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from hashkit.data.readers import FileImageReader
from hashkit.data.open_set import seen_fraction_validator, split_by_fraction
from hashkit.errors import DataError
from hashkit.interfaces import BuildContext, RetrievalData, Split
from hashkit_plugins.datasets._files import (check_counts, counts_validator, dataset_example, dataset_root,
                                             multi_hot, parse_int, read_rows, write_lines, write_tiny_image)


@attrs.frozen
class ListFileConfig:
    #: directory the image paths are relative to
    root: str = ""
    #: list files (absolute, or relative to root)
    train_list: str = "train.txt"
    query_list: str = "query.txt"
    #: "" = database is the training split
    database_list: str = ""
    #: optional class names file (one per line); otherwise classes = 0..max label
    classes_file: str = ""
    #: split sizes to check (train, query, classes); unset or {} = no check
    expected_counts: dict[str, int] | None = attrs.field(default=None, validator=counts_validator)
    #: fraction of classes seen in training; the rest are held out as unseen classes for the open-set
    #: protocols (0.95 / 0.85 / 0.75 = the DSH_Analysis splits; 1 = every class, no split)
    seen_fraction: float = attrs.field(default=1.0, validator=seen_fraction_validator)


def _list_path(root: Path, name: str, key: str) -> Path:
    path = Path(name).expanduser()
    path = path if path.is_absolute() else root / path
    if not path.is_file():
        raise DataError(f"dataset 'list_file': {key} not found (looked for {path})")
    return path


def read_multi_label_list(path: Path) -> tuple[list[str], list[list[int]]]:
    items, labels = [], []
    for row in read_rows(path, -2, comments=True):
        items.append(row[0])
        ids = [parse_int(x, path, "label") for x in row[1:]]
        if any(c < 0 for c in ids):
            raise DataError(f"{path}: negative label in line for {row[0]!r}")
        labels.append(sorted(set(ids)))
    return items, labels


def build_list_file(cfg: ListFileConfig, ctx: BuildContext) -> RetrievalData:
    """Images listed as `path label [label...]` in train/query(/database) list files; multi-label allowed."""
    root = dataset_root("list_file", cfg.root)
    lists = {"train": read_multi_label_list(_list_path(root, cfg.train_list, "train_list")),
             "query": read_multi_label_list(_list_path(root, cfg.query_list, "query_list"))}
    if cfg.database_list:
        lists["database"] = read_multi_label_list(_list_path(root, cfg.database_list, "database_list"))
    top = max((max(ls) for _, labels in lists.values() for ls in labels), default=-1)
    if cfg.classes_file:
        path = _list_path(root, cfg.classes_file, "classes_file")
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if top >= len(names):
            raise DataError(f"dataset 'list_file': label {top} but {path} names only {len(names)} classes")
    else:
        names = [str(c) for c in range(top + 1)]
    reader = FileImageReader(root)
    splits = {k: Split(items=items, targets=multi_hot(labels, len(names)), reader=reader)
              for k, (items, labels) in lists.items()}
    splits.setdefault("database", splits["train"])
    counts = {"train": len(splits["train"]), "query": len(splits["query"]), "classes": len(names)}
    check_counts("list_file", root, counts, cfg.expected_counts or None)
    data = RetrievalData(name="list_file", num_classes=len(names), class_names=tuple(names), splits=splits,
                         protocol="query=query_list, database=" + ("database_list" if cfg.database_list else "train"))
    return split_by_fraction(data, cfg.seen_fraction)


def write_miniature(tmp: Path) -> dict:
    """A miniature list-file dataset: 6 images, 3 labels, two of them multi-label."""
    root = tmp / "lists"
    for i in range(6):
        write_tiny_image(root / "img" / f"{i}.jpg", i)
    write_lines(root / "train.txt", ["# path label [label ...]", "img/0.jpg 0", "img/1.jpg 1 2", "img/2.jpg 2", "img/3.jpg 0 1"])
    write_lines(root / "query.txt", ["img/4.jpg 1", "img/5.jpg 0 2"])
    write_lines(root / "classes.txt", ["red", "green", "blue"])
    return {"root": str(root), "classes_file": "classes.txt",
            "expected_counts": {"train": 4, "query": 2, "classes": 3}}


def components(register):
    register("dataset", "list_file", build_list_file, config=ListFileConfig, example=dataset_example(write_miniature))
