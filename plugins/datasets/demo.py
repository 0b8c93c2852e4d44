"""``demo``: a Fashion-MNIST subset shipped inside the package (10 classes, 28x28 gray, MIT licence).

The file ``demo_data/fashion_mnist_demo.npz`` holds 200 training and 50 query images per class, taken in
file order from Debian's ``dataset-fashion-mnist`` (training images from the official training file, query
images from the official test file; see ``demo_data/README.md`` and ``tools/make_demo_data.py``). It is read
through ``importlib.resources``, so it works from an installed package with nothing else present.

Protocol as for the fine-grained benchmarks: query = the test images, database = train. Gray images are
returned as RGB (three equal channels).
"""

from __future__ import annotations

from importlib import resources

import attrs
import numpy as np
import torch

from hashkit.data.open_set import seen_fraction_validator, split_by_fraction
from hashkit.data.readers import ArrayImageReader
from hashkit.errors import DataError
from hashkit.interfaces import BuildContext, RetrievalData, Split

DATA_FILE = "fashion_mnist_demo.npz"
#: per-class sizes stored in the shipped file
STORED_TRAIN, STORED_QUERY = 200, 50


def _at_most(limit: int):
    def check(inst, attribute, value):
        if not 1 <= value <= limit:
            raise ValueError(f"'{attribute.name}' must be in 1..{limit}, found {value}")
    return check


def _class_ids(inst, attribute, value):
    if len(set(value)) != len(value) or any(not 0 <= c < 10 for c in value):
        raise ValueError(f"'{attribute.name}' must be distinct class ids in 0..9, found {list(value)}")


@attrs.frozen
class DemoConfig:
    #: training (= database) images per class, at most 200
    train_per_class: int = attrs.field(default=100, validator=_at_most(STORED_TRAIN))
    #: query images per class (from the official test set), at most 50
    query_per_class: int = attrs.field(default=30, validator=_at_most(STORED_QUERY))
    #: Fashion-MNIST class ids to keep (relabelled 0..len-1 in this order); empty = all ten
    classes: tuple[int, ...] = attrs.field(default=(), validator=_class_ids)
    #: fraction of classes seen in training; the rest are held out as unseen classes for the open-set
    #: protocols (0.8 = the last 2 of 10 classes unseen; 1 = every class, no split)
    seen_fraction: float = attrs.field(default=1.0, validator=seen_fraction_validator)


def load_demo_arrays() -> dict[str, np.ndarray]:
    """The shipped arrays (``train_images``, ``train_labels``, ``query_images``, ``query_labels``,
    ``class_names``, ``source``)."""
    ref = resources.files("hashkit_plugins.datasets") / "demo_data" / DATA_FILE
    try:
        with ref.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise DataError(f"demo data {ref} cannot be read ({exc}); reinstall hashkit") from None


def _subset(images, labels, classes, per_class, split: str) -> Split:
    rows = []
    new_labels = []
    for new, c in enumerate(classes):
        r = np.flatnonzero(labels == c)[:per_class]
        rows.append(r)
        new_labels += [new] * len(r)
    rows = np.concatenate(rows)
    targets = torch.nn.functional.one_hot(torch.as_tensor(new_labels), len(classes)).float()
    reader = ArrayImageReader(images[rows], name=f"{DATA_FILE}:{split}")
    return Split(items=[str(i) for i in range(len(rows))], targets=targets, reader=reader)


def build_demo(cfg: DemoConfig, ctx: BuildContext) -> RetrievalData:
    """Fashion-MNIST subset shipped in the package (query = test images, database = train)."""
    arrays = load_demo_arrays()
    names = [str(n) for n in arrays["class_names"]]
    classes = list(cfg.classes) or list(range(len(names)))
    train = _subset(arrays["train_images"], arrays["train_labels"], classes, cfg.train_per_class, "train")
    query = _subset(arrays["query_images"], arrays["query_labels"], classes, cfg.query_per_class, "query")
    data = RetrievalData(name="demo", num_classes=len(classes), class_names=tuple(names[c] for c in classes),
                         splits={"train": train, "query": query, "database": train},
                         protocol="query=test, database=train")
    return split_by_fraction(data, cfg.seen_fraction)


def _example():
    from hashkit.testing import ComponentExample, expect

    def check(data, _out):
        sizes = (len(data.split("train")), len(data.split("query")))
        expect(sizes == (3 * 4, 3 * 2), f"train/query sizes {sizes}, expected (12, 6)")
        expect(data.split("database") is data.split("train"), "the database split must be the training split")

    return ComponentExample(config={"train_per_class": 4, "query_per_class": 2, "classes": (0, 5, 9)}, check=check)


def components(register):
    register("dataset", "demo", build_demo, config=DemoConfig, example=_example)
