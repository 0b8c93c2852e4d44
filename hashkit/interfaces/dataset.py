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
class RetrievalData:
    name: str
    num_classes: int
    splits: dict[str, Split]
    class_names: Sequence[str] = ()
    #: the protocol in words, printed beside every number (e.g. "query=test, database=train")
    protocol: str = "query=test, database=train"

    def split(self, name: str) -> Split:
        if name not in self.splits:
            from hashkit.errors import DataError

            raise DataError(f"dataset {self.name!r} has no split {name!r}; it has {sorted(self.splits)}")
        return self.splits[name]
