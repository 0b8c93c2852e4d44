"""The config base and the common ending shared by the built-in fine-grained dataset loaders.

Every fine-grained loader (``cub200``, ``nabirds``, ``aircraft``, ``food101``, ``vegfru``, ``stanford_dogs``,
``stanford_cars``, ``image_folder``) has a config deriving from :class:`FineGrainedConfig` (``root``,
``expected_counts`` and ``seen_fraction``) and ends with :func:`finish`: the split-size check, then the
fine-grained protocol (query = the test split, database = the training split), then the seen/unseen class
split (:mod:`hashkit.data.open_set`: the last classes of the loader's order are unseen, or the loader's own
rule). A rule that applies to all of them belongs here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Sequence

import attrs

from hashkit.data.open_set import last_classes, seen_fraction_validator, split_by_fraction
from hashkit.data.readers import FileImageReader
from hashkit.errors import DataError
from hashkit.interfaces import ClassSplit, RetrievalData, Split
from hashkit_plugins.datasets._files import check_counts, counts_validator, dataset_root, one_hot

#: items (paths relative to root) and 0-based labels of one split
Listing = tuple[list[str], list[int]]


@attrs.frozen
class FineGrainedConfig:
    #: the dataset's top directory, as distributed (each loader says which files it reads there)
    root: str = ""
    #: split sizes to check (train, query, classes); unset = the official ones (none for your own data),
    #: a table = a deliberate subset, {} = no check
    expected_counts: dict[str, int] | None = attrs.field(default=None, validator=counts_validator)
    #: fraction of classes seen in training; the rest are held out as unseen classes for the open-set
    #: protocols (0.95 / 0.85 / 0.75 = the DSH_Analysis splits; 1 = every class, no split)
    seen_fraction: float = attrs.field(default=1.0, validator=seen_fraction_validator)


def root_of(name: str, cfg: FineGrainedConfig) -> Path:
    """The configured root directory; an empty or missing one is a DataError naming the recipe key."""
    return dataset_root(name, cfg.root)


def finish(name: str, cfg: FineGrainedConfig, root: Path, classes: Sequence[str], train: Listing, test: Listing,
           official: Mapping[str, int] | None, *, protocol: str | None = None,
           class_split: Callable[[int, float], ClassSplit] = last_classes) -> RetrievalData:
    """Check the split sizes against ``cfg.expected_counts`` (default: ``official``; ``None`` = no default
    check) and return the data with query = ``test``, database = ``train`` (the same split), described as
    ``protocol`` if given, split into seen and unseen classes by ``class_split`` when ``cfg.seen_fraction < 1``."""
    counts = {"train": len(train[0]), "query": len(test[0]), "classes": len(classes)}
    expected = cfg.expected_counts
    if expected is None and official is not None:
        expected = dict(official)
    check_counts(name, root, counts, dict(expected) if expected else None)
    data = fine_grained_data(name, root, classes, train, test)
    if protocol is not None:
        data = attrs.evolve(data, protocol=protocol)
    return split_by_fraction(data, cfg.seen_fraction, class_split)


def fine_grained_data(name: str, root: Path, classes: Sequence[str], train: Listing, test: Listing) -> RetrievalData:
    """RetrievalData for the fine-grained protocol: query = test, database = train (the same Split)."""
    reader = FileImageReader(root)
    num_classes = len(classes)
    for split, (_, labels) in (("train", train), ("test", test)):
        bad = [c for c in labels if not 0 <= c < num_classes]
        if bad:
            raise DataError(f"dataset {name!r} at {root}: {split} label {bad[0]} outside 0..{num_classes - 1}")
    train_split = Split(items=list(train[0]), targets=one_hot(train[1], num_classes), reader=reader)
    query_split = Split(items=list(test[0]), targets=one_hot(test[1], num_classes), reader=reader)
    return RetrievalData(name=name, num_classes=num_classes, class_names=tuple(classes),
                         splits={"train": train_split, "query": query_split, "database": train_split},
                         protocol="query=test, database=train")
