"""Dataset: a factory returns :class:`RetrievalData`, the splits of a retrieval benchmark.

Contract
--------
- ``splits`` holds at least ``"train"``, ``"query"`` and ``"database"`` (the fine-grained protocol: query =
  official test split, database = official train split, so ``database`` usually *is* ``train``).
- Each :class:`Split` has ``items`` (relative paths or ids, one per image, stable order), ``targets``
  ``(n, C)`` float32 multi-hot labels, and a ``reader`` that opens item ``i`` as an RGB ``PIL.Image``.
- Readers are picklable (DataLoader workers) and raise :class:`~hashkit.errors.DataError` naming the path
  when an image is missing or corrupt.
- A factory checks on load that the dataset's files exist and that split sizes match its spec, naming the
  missing file and where it looked.
- Open-set data (a seen/unseen class split, :mod:`hashkit.data.open_set`): ``train``, ``query`` and
  ``database`` hold the **seen** rows with the ``C_s = num_classes`` seen label columns; ``open_set`` holds the
  unseen query and database rows and the full ``C``-column targets of every part.
"""

from __future__ import annotations

from typing import Sequence

import attrs
from torch import Tensor


class ImageReader:
    """Opens item ``i`` of a split as an RGB PIL image. Subclasses must be picklable."""

    def __call__(self, item: str):  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self, item: str) -> str:
        """Where ``item`` lives, for error messages (a path by default)."""
        return item


@attrs.frozen
class Split:
    items: Sequence[str]
    targets: Tensor
    reader: ImageReader

    def __len__(self) -> int:
        return len(self.items)

    def __attrs_post_init__(self) -> None:
        if self.targets.ndim != 2 or self.targets.shape[0] != len(self.items):
            raise ValueError(
                f"Split targets must be (n, C) with n = {len(self.items)} items, got {tuple(self.targets.shape)}"
            )


@attrs.frozen
class ClassSplit:
    """Seen and unseen classes as label-column indices of the loader (``seen`` in the new column order)."""

    seen: tuple[int, ...]
    unseen: tuple[int, ...]
    seen_fraction: float
    #: the rule in words, recorded in manifests and reports
    rule: str

    @property
    def num_seen(self) -> int:
        return len(self.seen)

    @property
    def num_classes(self) -> int:
        return len(self.seen) + len(self.unseen)

    @property
    def order(self) -> tuple[int, ...]:
        """New column ``j`` holds the loader's column ``order[j]`` (seen first)."""
        return self.seen + self.unseen


@attrs.frozen
class OpenSet:
    """The unseen half of a split dataset and the full-column targets of its seen half.

    ``query_seen`` / ``database_seen`` / ``train_seen`` have the rows (and item lists) of the data's ``query``
    / ``database`` / ``train`` splits (``train_seen`` *is* ``database_seen`` when the training pool is the
    database); every split here has ``C`` columns in the order ``class_names`` (seen first).
    """

    classes: ClassSplit
    class_names: tuple[str, ...]
    query_seen: Split
    database_seen: Split
    train_seen: Split
    query_unseen: Split
    database_unseen: Split

    @property
    def num_seen(self) -> int:
        return self.classes.num_seen

    @property
    def num_classes(self) -> int:
        return self.classes.num_classes


@attrs.frozen
class RetrievalData:
    name: str
    num_classes: int
    splits: dict[str, Split]
    class_names: Sequence[str] = ()
    #: the protocol in words, printed beside every number (e.g. "query=test, database=train")
    protocol: str = "query=test, database=train"
    #: seen/unseen class split (open-set protocols), or None: then ``splits`` hold every class
    open_set: OpenSet | None = None

    def split(self, name: str) -> Split:
        if name not in self.splits:
            from hashkit.errors import DataError

            raise DataError(f"dataset {self.name!r} has no split {name!r}; it has {sorted(self.splits)}")
        return self.splits[name]
