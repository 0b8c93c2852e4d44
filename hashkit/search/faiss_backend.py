"""faiss binary indexes (optional extra ``hashkit[faiss]``): ``flat`` (exact), ``ivf``, ``hnsw``, ``multihash``.

faiss is imported lazily; without it :class:`FaissBackend` raises a :class:`~hashkit.errors.HashkitError`
saying how to install it. Codes use the packed layout of :mod:`hashkit.codes.packing`: ``ceil(L/8)`` bytes
with zero padding bits, so faiss's dimension ``8 * ceil(L/8)`` gives the same distances as ``L`` bits.
Results are re-sorted per query by (distance, insertion order) and mapped to ids; radius search is
inclusive (faiss's own radius is exclusive, so ``r + 1`` is passed).
"""

from __future__ import annotations

import numpy as np

from hashkit.codes.packing import num_bytes
from hashkit.errors import ContractError, HashkitError
from hashkit.search.base import KnnResult, RadiusResult, SearchBackend, sort_hits

INDEX_TYPES = ("flat", "ivf", "hnsw", "multihash")


def import_faiss():
    """The faiss module, or a HashkitError naming the extra to install."""
    try:
        import faiss
    except ImportError as exc:
        raise HashkitError(f"faiss search backends need faiss: pip install 'hashkit[faiss]' ({exc})") from None
    return faiss


class FaissBackend(SearchBackend):
    """A faiss binary index. ``ivf``: ``nlist`` lists (default ~sqrt(n), trained on the first add), ``nprobe``;
    ``hnsw``: ``m`` links, ``ef_search``; ``multihash``: ``nhash`` tables of ``hash_bits`` bits, ``nflip``."""

    exact = False

    def __init__(self, num_bits: int, index_type: str = "flat", *, nlist: int = 0, nprobe: int = 8, m: int = 16,
                 ef_search: int = 64, nhash: int = 4, hash_bits: int = 0, nflip: int = 2,
                 threads: int | None = None):
        super().__init__(num_bits)
        if index_type not in INDEX_TYPES:
            raise ContractError(f"faiss index type must be one of {INDEX_TYPES}, found {index_type!r}")
        self.faiss = import_faiss()
        if threads:
            self.faiss.omp_set_num_threads(int(threads))
        self.name = f"faiss-{index_type}"
        self.index_type = index_type
        self.exact = index_type == "flat"
        self.dim = 8 * num_bytes(num_bits)
        self.nlist, self.nprobe, self.ef_search = nlist, nprobe, ef_search
        f = self.faiss
        if index_type == "flat":
            self.index = f.IndexBinaryFlat(self.dim)
        elif index_type == "hnsw":
            self.index = f.IndexBinaryHNSW(self.dim, m)
            self.index.hnsw.efSearch = ef_search
        elif index_type == "multihash":
            bits = hash_bits or max(1, min(self.dim // max(nhash, 1), 24))
            if bits * nhash > self.dim:
                raise ContractError(f"multihash: {nhash} tables x {bits} bits exceed the {self.dim}-bit codes")
            self.index = f.IndexBinaryMultiHash(self.dim, nhash, bits)
            self.index.nflip = nflip
        else:
            self.index = None  # ivf: built on the first add, when the list count can follow the data size

    def _add(self, packed: np.ndarray) -> None:
        if self.index is None:
            nlist = self.nlist or int(max(1, min(len(packed) // 39, round(np.sqrt(len(packed))))))
            self._quantizer = self.faiss.IndexBinaryFlat(self.dim)
            self.index = self.faiss.IndexBinaryIVF(self._quantizer, self.dim, nlist)
            self.index.train(packed)
            self.index.nprobe = min(self.nprobe, nlist)
        self.index.add(packed)

    def _knn(self, queries: np.ndarray, k: int) -> KnnResult:
        dist, pos = self.index.search(queries, k)
        rows = np.repeat(np.arange(len(queries)), k)
        pos, dist = pos.reshape(-1), dist.reshape(-1)
        found = pos >= 0
        lims, hit_pos, hit_d = sort_hits(rows[found], dist[found], pos[found], len(queries), k)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        out_d = np.full((len(queries), k), -1, dtype=np.int32)
        counts = np.diff(lims)
        col = np.arange(len(hit_pos)) - np.repeat(lims[:-1], counts)
        row = np.repeat(np.arange(len(queries)), counts)
        ids[row, col] = self.ids[hit_pos]
        out_d[row, col] = hit_d
        return KnnResult(ids, out_d)

    def _radius(self, queries: np.ndarray, radius: int) -> RadiusResult:
        if self.index_type == "hnsw":
            raise ContractError("faiss HNSW binary indexes do not support radius search; use exact, flat or ivf")
        lims, dist, pos = self.index.range_search(queries, radius + 1)
        lims = lims.astype(np.int64)
        rows = np.repeat(np.arange(len(queries)), np.diff(lims))
        lims, hit_pos, hit_d = sort_hits(rows, dist, pos, len(queries))
        return RadiusResult(lims, self.ids[hit_pos], hit_d)
