"""Seen/unseen class splits: the open-set retrieval protocols of the DSH_Analysis benchmark.

A *class split* keeps the first ``C_s`` label columns of a dataset as **seen** classes and the last ``z`` as
**unseen** (the study's "the former 95 % / 85 % / 75 % categories are seen", in each loader's own class order).
Applying it to a :class:`~hashkit.interfaces.RetrievalData` gives:

- ``splits["train"]`` = ``splits["database"]`` = the seen rows of the training list (the training pool *is*
  the seen database, same rows in the same order, as in the fine-grained protocol), ``splits["query"]`` = the
  seen rows of the query list, all with the ``C_s`` seen label columns: everything that trains, selects a
  model or scores seen@seen sees a ``C_s``-class dataset;
- ``open_set``: an :class:`OpenSet` with the full-column (``C``) targets of those seen rows and the unseen
  query and database rows, for the seen@all, unseen@unseen and unseen@all protocols
  (:mod:`hashkit.evaluation.open_set`).

A row is **seen** when at least one of its seen label columns is set (single-label: its class is seen;
multi-label: an image with one seen and one unseen label is seen). Label columns are permuted to
``[seen..., unseen...]`` (the identity for every dataset except VegFru, whose unseen classes sit at the end of
both its vegetable and fruit blocks), so "first ``C_s`` columns = seen" always holds.

The number of unseen classes for a seen fraction ``f`` is ``z = floor(C (1 - f))`` (a float tolerance of
1e-9 absorbs ``1 - 0.85 = 0.15000000000000002``-style error). This reproduces the study's hard-coded table for
every fine-grained dataset at f = 0.95 / 0.85 / 0.75 (CUB 10/30/50, Food-101 and Aircraft 5/15/25, NABirds
27/83/138, Stanford Dogs 6/18/30); VegFru rounds ``z`` up to a multiple of 3 (15/45/75) [inferred design for
fractions outside the table].
"""

from __future__ import annotations

import math
from typing import Sequence

import attrs
import torch

from hashkit.errors import DataError
from hashkit.interfaces.dataset import ClassSplit, OpenSet, RetrievalData, Split

#: the study's three splits ("--ZS 5 / 15 / 25")
SEEN_FRACTIONS = (0.95, 0.85, 0.75)


def seen_fraction_validator(inst, attribute, value):
    """attrs validator of a ``seen_fraction`` option: 0 < f <= 1 (1 = every class seen: no split)."""
    if not 0.0 < value <= 1.0:
        raise ValueError(f"'{attribute.name}' must be in (0, 1] (1 = no seen/unseen split), found {value}")


def unseen_count(num_classes: int, seen_fraction: float, multiple_of: int = 1) -> int:
    """``z = floor(C (1 - f))``, rounded up to a multiple of ``multiple_of``; at least 1 seen class remains."""
    z = math.floor(num_classes * (1.0 - seen_fraction) + 1e-9)
    if multiple_of > 1:
        z = -(-z // multiple_of) * multiple_of
    if not 0 <= z < num_classes:
        raise DataError(f"seen_fraction {seen_fraction} leaves {num_classes - z} seen classes of {num_classes}")
    return z


def last_classes(num_classes: int, seen_fraction: float) -> ClassSplit:
    """The study's rule: seen = the first ``C - z`` classes of the loader's order, unseen = the last ``z``."""
    z = unseen_count(num_classes, seen_fraction)
    seen = tuple(range(num_classes - z))
    return ClassSplit(seen=seen, unseen=tuple(range(num_classes - z, num_classes)), seen_fraction=seen_fraction,
                      rule=f"last {z} of {num_classes} classes in the loader's order are unseen")


def _rows(split: Split, rows: torch.Tensor, targets: torch.Tensor) -> Split:
    keep = rows.tolist()
    return Split(items=[split.items[i] for i in keep], targets=targets[rows], reader=split.reader)


def seen_rows(targets: torch.Tensor, classes: ClassSplit) -> torch.Tensor:
    """Bool ``(n,)``: rows with at least one seen label (targets in the loader's column order)."""
    return (targets[:, list(classes.seen)] > 0).any(dim=1)


def apply_class_split(data: RetrievalData, classes: ClassSplit) -> RetrievalData:
    """``data`` cut into seen and unseen parts (module docstring); ``classes`` must cover its columns."""
    if classes.num_classes != data.num_classes or sorted(classes.order) != list(range(data.num_classes)):
        raise DataError(f"dataset {data.name!r}: the class split covers {classes.num_classes} classes, "
                        f"the dataset has {data.num_classes}")
    if data.open_set is not None:
        raise DataError(f"dataset {data.name!r} is already split into seen and unseen classes")
    order = list(classes.order)
    cs = classes.num_seen
    names = tuple(data.class_names[c] if c < len(data.class_names) else str(c) for c in order)
    parts: dict[str, tuple[Split, Split]] = {}
    for name in ("query", "database"):
        split = data.split(name)
        full = split.targets[:, order]
        mask = seen_rows(split.targets, classes)
        parts[name] = (_rows(split, torch.nonzero(mask).flatten(), full),
                       _rows(split, torch.nonzero(~mask).flatten(), full))
    train = data.split("train")
    query_seen, database_seen = parts["query"][0], parts["database"][0]
    if train is data.split("database"):
        train_seen = database_seen
    else:
        train_seen = _rows(train, torch.nonzero(seen_rows(train.targets, classes)).flatten(), train.targets[:, order])
    seen = {name: Split(items=part.items, targets=part.targets[:, :cs], reader=part.reader)
            for name, part in (("query", query_seen), ("database", database_seen), ("train", train_seen))}
    if train_seen is database_seen:
        seen["train"] = seen["database"]
    for what in ("train", "query"):
        if len(seen[what]) == 0:
            raise DataError(f"dataset {data.name!r}: the seen/unseen split leaves no seen {what} images")
    open_set = OpenSet(classes=classes, class_names=names, query_seen=query_seen, database_seen=database_seen,
                       train_seen=train_seen, query_unseen=parts["query"][1], database_unseen=parts["database"][1])
    protocol = (f"{data.protocol}; seen classes {cs} of {classes.num_classes} "
                f"(seen_fraction {classes.seen_fraction:g}: {classes.rule})")
    return attrs.evolve(data, num_classes=cs, class_names=names[:cs], protocol=protocol, open_set=open_set,
                        splits=seen)


def split_by_fraction(data: RetrievalData, seen_fraction: float, rule=last_classes) -> RetrievalData:
    """``data`` unchanged for ``seen_fraction = 1``, else split by ``rule(num_classes, seen_fraction)``."""
    if seen_fraction >= 1.0:
        return data
    return apply_class_split(data, rule(data.num_classes, seen_fraction))


def class_list(split: ClassSplit, names: Sequence[str]) -> list[dict]:
    """The class table of a manifest: per new column its source index, name and seen flag."""
    return [{"column": j, "source": c, "name": names[j] if j < len(names) else str(c), "seen": j < split.num_seen}
            for j, c in enumerate(split.order)]
