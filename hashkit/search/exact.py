"""``exact``: brute-force Hamming search by popcount (always available, exact; ties by insertion order).

Per block of queries: distances by XOR + popcount (:func:`hashkit.codes.packing.hamming_distances`); for
k-NN a distance threshold ``t`` is estimated from a strided sample of each query's distances so that about
``2k`` items fall within it, the items with ``d <= t`` are collected and sorted by (distance, position), and rows
that collected fewer than ``k`` retry with the exact threshold from the full histogram.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from hashkit.codes.packing import hamming_distances, to_words
from hashkit.search.base import KnnResult, RadiusResult, SearchBackend, nonzero_2d, sort_hits

_SAMPLE = 1 << 14
_BLOCK_ELEMENTS = 1 << 23


class ExactBackend(SearchBackend):
    """Exact Hamming k-NN / radius search over packed codes with numpy popcount."""

    name = "exact"
    exact = True

    def __init__(self, num_bits: int, threads: int = 1):
        super().__init__(num_bits)
        self.words = np.zeros((0, -(-num_bits // 64)), dtype=np.uint64)
        #: query blocks searched in parallel (numpy releases the GIL inside its kernels)
        self.threads = max(1, int(threads))

    def _add(self, packed: np.ndarray) -> None:
        self.words = np.concatenate([self.words, to_words(packed)])

    def _blocks(self, queries: np.ndarray):
        qw = to_words(queries)
        step = max(1, _BLOCK_ELEMENTS // max(self.ntotal, 1))
        for start in range(0, len(qw), step):
            yield start, hamming_distances(qw[start:start + step], self.words)

    def _knn(self, queries: np.ndarray, k: int) -> KnnResult:
        ids = np.empty((len(queries), k), dtype=np.int64)
        dists = np.empty((len(queries), k), dtype=np.int32)
        step = max(1, _BLOCK_ELEMENTS // max(self.ntotal, 1))
        starts = range(0, len(queries), step)
        if self.threads > 1 and len(starts) > 1:
            with ThreadPoolExecutor(self.threads) as pool:
                list(pool.map(lambda s: self._knn_block(queries, s, step, k, ids, dists), starts))
        else:
            for s in starts:
                self._knn_block(queries, s, step, k, ids, dists)
        return KnnResult(ids, dists)

    def _knn_block(self, queries: np.ndarray, start: int, step: int, k: int, ids: np.ndarray, dists: np.ndarray
                   ) -> None:
        v = self.num_bits + 1
        n = self.ntotal
        dist = hamming_distances(to_words(queries[start:start + step]), self.words)
        b = len(dist)
        stride = max(1, n // _SAMPLE)
        sample = dist[:, ::stride]
        hist = np.bincount((np.arange(b)[:, None] * v + sample).ravel(), minlength=b * v).reshape(b, v)
        expected = np.cumsum(hist, axis=1) * (n / sample.shape[1])
        threshold = np.argmax(expected >= min(2 * k + 32, n), axis=1)
        rows, cols = nonzero_2d(dist <= threshold[:, None].astype(dist.dtype))
        short = np.bincount(rows, minlength=b) < k
        if short.any():  # exact threshold for the rows the estimate under-shot
            fix = np.flatnonzero(short)
            full = np.bincount((np.arange(len(fix))[:, None] * v + dist[fix]).ravel(),
                               minlength=len(fix) * v).reshape(len(fix), v)
            exact_t = np.argmax(np.cumsum(full, axis=1) >= k, axis=1)
            r2, c2 = nonzero_2d(dist[fix] <= exact_t[:, None].astype(dist.dtype))
            keep = ~short[rows]
            rows = np.concatenate([rows[keep], fix[r2]])
            cols = np.concatenate([cols[keep], c2])
        lims, hit_ids, hit_d = sort_hits(rows, dist[rows, cols], cols, b, k)
        ids[start:start + b] = self.ids[hit_ids].reshape(b, k)
        dists[start:start + b] = hit_d.reshape(b, k)

    def _radius(self, queries: np.ndarray, radius: int) -> RadiusResult:
        parts_lims, parts_ids, parts_d = [np.zeros(1, dtype=np.int64)], [], []
        offset = 0
        for start, dist in self._blocks(queries):
            rows, cols = nonzero_2d(dist <= min(radius, self.num_bits))
            lims, hit_ids, hit_d = sort_hits(rows, dist[rows, cols], cols, len(dist))
            parts_lims.append(lims[1:] + offset)
            offset += lims[-1]
            parts_ids.append(self.ids[hit_ids])
            parts_d.append(hit_d)
        if not parts_ids:
            return RadiusResult(np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32))
        return RadiusResult(np.concatenate(parts_lims), np.concatenate(parts_ids), np.concatenate(parts_d))
