"""Search backend interface and result types.

A backend indexes packed codes (``uint8 (n, ceil(L/8))``, :mod:`hashkit.codes.packing` layout) with optional
int64 ids and answers k-nearest-neighbour and radius queries in Hamming distance. Results are sorted per
query by (distance, insertion order — the id for default ids); radius results are inclusive (``d <= r``) and
stored like CSR: the hits of query ``i`` are ``ids[lims[i]:lims[i+1]]``.
"""

from __future__ import annotations

import attrs
import numpy as np

from hashkit.codes.packing import num_bytes
from hashkit.errors import ContractError


@attrs.frozen
class KnnResult:
    """``ids`` int64 ``(Q, k)`` and ``distances`` int32 ``(Q, k)``; ``k = min(k, ntotal)``."""

    ids: np.ndarray
    distances: np.ndarray


@attrs.frozen
class RadiusResult:
    """``lims`` int64 ``(Q+1,)``, ``ids`` int64 ``(M,)``, ``distances`` int32 ``(M,)``."""

    lims: np.ndarray
    ids: np.ndarray
    distances: np.ndarray

    def query(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Ids and distances of query ``i``'s hits."""
        a, b = self.lims[i], self.lims[i + 1]
        return self.ids[a:b], self.distances[a:b]


class SearchBackend:
    """Base class: holds ``num_bits``, validates inputs and keeps the id mapping."""

    name = "base"
    exact = False

    def __init__(self, num_bits: int):
        if num_bits <= 0:
            raise ContractError(f"a search index needs a positive bit count, found {num_bits}")
        self.num_bits = int(num_bits)
        self.ids = np.zeros(0, dtype=np.int64)

    @property
    def ntotal(self) -> int:
        return len(self.ids)

    def check_codes(self, packed, what: str) -> np.ndarray:
        arr = np.asarray(packed.numpy() if hasattr(packed, "numpy") else packed)
        if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != num_bytes(self.num_bits):
            raise ContractError(f"{what} must be packed uint8 (n, {num_bytes(self.num_bits)}) codes of "
                                f"{self.num_bits} bits, found {arr.dtype} {arr.shape}")
        return np.ascontiguousarray(arr)

    def add(self, packed, ids=None) -> None:
        """Index packed database codes; ``ids`` default to ``ntotal, ntotal + 1, ...``."""
        arr = self.check_codes(packed, "database codes")
        if ids is None:
            new_ids = np.arange(self.ntotal, self.ntotal + len(arr), dtype=np.int64)
        else:
            new_ids = np.asarray(ids, dtype=np.int64).reshape(-1)
            if len(new_ids) != len(arr):
                raise ContractError(f"{len(new_ids)} ids for {len(arr)} codes")
        self._add(arr)
        self.ids = np.concatenate([self.ids, new_ids])

    def knn(self, queries, k: int) -> KnnResult:
        """The ``k`` nearest database codes of each query (ties by insertion order)."""
        if k <= 0:
            raise ContractError(f"k must be positive, found {k}")
        q = self.check_codes(queries, "query codes")
        k = min(int(k), self.ntotal)
        if k == 0 or len(q) == 0:
            return KnnResult(np.zeros((len(q), 0), np.int64), np.zeros((len(q), 0), np.int32))
        return self._knn(q, k)

    def radius(self, queries, radius: int) -> RadiusResult:
        """All database codes within Hamming distance ``radius`` (inclusive) of each query."""
        if radius < 0:
            raise ContractError(f"radius must be >= 0, found {radius}")
        return self._radius(self.check_codes(queries, "query codes"), int(radius))

    # -- implemented by backends ----------------------------------------------------------------
    def _add(self, packed: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _knn(self, queries: np.ndarray, k: int) -> KnnResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def _radius(self, queries: np.ndarray, radius: int) -> RadiusResult:  # pragma: no cover - abstract
        raise NotImplementedError


def nonzero_2d(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero`` of a C-contiguous 2-D bool array via ``flatnonzero`` (an order of magnitude faster on
    sparse masks), as ``(rows, cols)`` sorted by row, then column."""
    flat = np.flatnonzero(mask)
    return np.divmod(flat, mask.shape[1]) if mask.shape[1] else (flat, flat)


def sort_hits(rows: np.ndarray, dist: np.ndarray, ids: np.ndarray, num_rows: int, k: int | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort hits by (row, distance, position); keep the first ``k`` per row if given.

    Returns ``(lims, positions, distances)`` with ``lims`` the CSR row offsets."""
    order = np.lexsort((ids, dist, rows))
    rows, dist, ids = rows[order], dist[order], ids[order]
    counts = np.bincount(rows, minlength=num_rows)
    if k is not None:
        first = np.cumsum(counts) - counts
        keep = (np.arange(len(rows)) - first[rows]) < k
        rows, dist, ids = rows[keep], dist[keep], ids[keep]
        counts = np.minimum(counts, k)
    lims = np.zeros(num_rows + 1, dtype=np.int64)
    np.cumsum(counts, out=lims[1:])
    return lims, ids.astype(np.int64, copy=False), dist.astype(np.int32, copy=False)
