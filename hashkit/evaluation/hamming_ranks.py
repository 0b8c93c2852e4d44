"""Compiled counting kernel: Hamming distances and index-tie ranks of relevant items from packed codes, fused.

For each query the database is scanned once in index order. Distances take only ``L + 1`` values, so no
sort is needed: a running count per distance gives, for a relevant item ``j`` at distance ``d``,

    rank(j) = #{i : d_i < d} + #{i <= j : d_i = d}        (stable order: distance, then database index)

where the first term is an exclusive prefix sum of the final histogram and the second is the running count
read when ``j`` is reached. The same two counts over relevant items only give ``j``'s rank among the relevant
items, hence ``P@rank(j)``. Cost per query ``O(N W + R + L)`` for ``W`` 64-bit words per code and ``R``
relevant items; memory ``O(R + L)``, never ``O(N)``.

Four interleaved histograms take consecutive items: with one, every repeated distance waits for the previous
increment's store (measured 6-8x slower on 48-bit codes). The scan runs from one relevant item to the next
in groups of four; each relevant item reads the sum of the four counts at its distance.

The kernel needs numba (the ``fast`` extra). :data:`AVAILABLE` says whether it can be used;
:mod:`hashkit.evaluation.average_precision` falls back to its pure-numpy path otherwise, with the same values
(tested).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hashkit.evaluation.harmonic import digamma_difference

try:  # optional: the ``fast`` extra
    import numba
    from numba.core import types as _types
    from numba.extending import intrinsic as _intrinsic
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None

AVAILABLE = numba is not None
# numba's on-disk cache (compiled once, then loaded in ~0.3 s) needs a writable place: next to this file or
# NUMBA_CACHE_DIR. Without one, caching is off and each process compiles (~3 s) instead of failing to import.
_CACHE = bool(os.environ.get("NUMBA_CACHE_DIR")) or os.access(Path(__file__).parent, os.W_OK)

__all__ = ["AVAILABLE", "relevant_rank_stats"]

_LANES = 4

if AVAILABLE:

    @_intrinsic
    def _popcount(typingctx, x):
        """``popcount`` of a uint64 (LLVM ``ctpop``: one ``popcnt`` instruction on x86-64)."""
        if not isinstance(x, _types.Integer):
            return None

        def codegen(context, builder, signature, args):
            return builder.ctpop(args[0])

        return _types.uint64(_types.uint64), codegen

    @numba.njit(inline="always")
    def _distance(qw, i, dw, j, words):
        dist = _popcount(qw[i, 0] ^ dw[j, 0])
        for w in range(1, words):
            dist += _popcount(qw[i, w] ^ dw[j, w])
        return dist

    _digamma_difference = numba.njit(inline="always")(digamma_difference)

    @numba.njit(inline="always")
    def _harmonic_difference(p, m, table):
        """Scalar form of :func:`hashkit.evaluation.harmonic.harmonic_difference` (``table`` = H[0..S-1])."""
        small_max = table.shape[0] - 1
        end = p + m
        small = table[int(min(end, small_max))] - table[int(min(p, small_max))]
        return small + _digamma_difference(max(p, small_max) + 1.0, max(end, small_max) + 1.0)

    @numba.njit(inline="always")
    def _lane_sum(lanes, d):
        total = lanes[0, d]
        for t in range(1, _LANES):
            total += lanes[t, d]
        return total

    @numba.njit(nogil=True, cache=_CACHE)
    def _count_run(qw, i, run, words, lanes):  # pragma: no cover - compiled
        """Add the distances of query ``i`` to the database items ``run`` (a slice) to the lane histograms.

        The slice (indices from 0 to its length) matters: with a loop from ``j`` to ``end`` inside the whole
        array LLVM did not unroll and the scan took twice as long.
        """
        n = run.shape[0]
        j = 0
        while j + _LANES <= n:
            for t in range(_LANES):
                lanes[t, _distance(qw, i, run, j + t, words)] += 1
            j += _LANES
        while j < n:
            lanes[0, _distance(qw, i, run, j, words)] += 1
            j += 1

    @numba.njit(nogil=True, cache=_CACHE)
    def _kernel(qw, dw, starts, cols, num_bits, ks, drop_last_item, harmonic,
                hist, hist_rel, num_rel, ap_sum, hits, ap_sum_k, tie_sum, tie_hits, tie_sum_k):  # pragma: no cover
        b, words = qw.shape
        n = dw.shape[0]
        v = num_bits + 1
        lanes = np.zeros((_LANES, v), np.int64)
        rel_count = np.zeros(v, np.int64)
        before = np.zeros(v, np.int64)
        rel_before = np.zeros(v, np.int64)
        most = 0
        for i in range(b):
            most = max(most, starts[i + 1] - starts[i])
        rel_dist = np.empty(most, np.int64)
        rel_within = np.empty(most, np.int64)
        rel_rank = np.empty(most, np.int64)
        for i in range(b):
            for d in range(v):  # explicit loops: a slice assignment here made the scan 3x slower
                rel_count[d] = 0
                for t in range(_LANES):
                    lanes[t, d] = 0
            first, stop = starts[i], starts[i + 1]
            p = first
            j = 0
            while True:
                end = cols[p] if p < stop else n
                _count_run(qw, i, dw[j:end], words, lanes)
                j = end
                if j >= n:
                    break
                d = _distance(qw, i, dw, j, words)  # the relevant item j = cols[p]
                lanes[0, d] += 1
                r = p - first
                rel_count[d] += 1
                rel_dist[r] = d
                rel_within[r] = _lane_sum(lanes, d)
                rel_rank[r] = rel_count[d]
                p += 1
                j += 1
            count = stop - first
            for d in range(v):
                hist[i, d] = _lane_sum(lanes, d)
            skip = -1
            if drop_last_item and n > 0:  # the last-ranked item: largest distance, then largest index
                dmax = v - 1
                while hist[i, dmax] == 0:
                    dmax -= 1
                for r in range(count):  # a relevant item with a larger index may sit at a smaller distance
                    if rel_dist[r] == dmax and rel_within[r] == hist[i, dmax]:
                        skip = r
                        rel_count[dmax] -= 1
                hist[i, dmax] -= 1
            acc = 0
            rel_acc = 0
            for d in range(v):
                before[d] = acc
                rel_before[d] = rel_acc
                acc += hist[i, d]
                rel_acc += rel_count[d]
                hist_rel[i, d] = rel_count[d]
            total = 0.0
            for r in range(count):
                if r == skip:
                    continue
                d = rel_dist[r]
                rank = before[d] + rel_within[r]
                prec = (rel_before[d] + rel_rank[r]) / rank
                total += prec
                for t in range(ks.shape[0]):
                    if rank <= ks[t]:
                        hits[t, i] += 1.0
                        ap_sum_k[t, i] += prec
            ap_sum[i] = total
            # tie-aware expectation, group by group (groups without relevant items add nothing)
            tie = 0.0
            before_all = 0.0
            rel_seen = 0.0
            for d in range(v):
                size = float(hist[i, d])
                rel = float(hist_rel[i, d])
                if rel > 0:
                    prob = rel / size
                    slope = (rel - 1) / (size - 1) if size > 1 else 0.0
                    offset = (rel_seen + 1) - slope * (before_all + 1)
                    tie += prob * (offset * _harmonic_difference(before_all, size, harmonic) + slope * size)
                    for t in range(ks.shape[0]):
                        m = min(max(ks[t] - before_all, 0.0), size)
                        if m > 0:
                            tie_sum_k[t, i] += prob * (offset * _harmonic_difference(before_all, m, harmonic)
                                                       + slope * m)
                            tie_hits[t, i] += prob * m
                before_all += size
                rel_seen += rel
            tie_sum[i] = tie
            num_rel[i] = count - (1 if skip >= 0 else 0)


def relevant_rank_stats(query_words: np.ndarray, database_words: np.ndarray, num_bits: int,
                        starts: np.ndarray, cols: np.ndarray, ks: np.ndarray, drop_last_item: bool,
                        harmonic: np.ndarray) -> tuple[np.ndarray, ...]:
    """Run the kernel on a query block.

    ``query_words (B, W)`` and ``database_words (N, W)``: uint64 packed codes (:func:`hashkit.codes.packing.
    to_words`); query ``i``'s relevant database indices are ``cols[starts[i]:starts[i + 1]]``, increasing;
    ``harmonic``: the harmonic numbers ``H[0..S-1]`` used exactly below ``S`` (asymptotic series above).
    Returns ``(hist (B, L+1), hist_rel (B, L+1), num_relevant (B,), ap_sum (B,), hits (K, B), ap_sum_k (K, B),
    tie_sum (B,), tie_hits (K, B), tie_sum_k (K, B))`` with the meanings of
    :class:`~hashkit.evaluation.average_precision.BlockStats` (``ks`` int64 ``(K,)``).
    """
    if not AVAILABLE:
        raise RuntimeError("the compiled Hamming kernel needs numba (pip install 'hashkit[fast]')")
    b = query_words.shape[0]
    v = int(num_bits) + 1
    hist = np.zeros((b, v), np.int64)
    hist_rel = np.zeros((b, v), np.int64)
    num_rel = np.zeros(b, np.float64)
    ap_sum = np.zeros(b, np.float64)
    topk = [np.zeros((len(ks), b), np.float64) for _ in range(4)]
    tie_sum = np.zeros(b, np.float64)
    _kernel(np.ascontiguousarray(query_words, np.uint64), np.ascontiguousarray(database_words, np.uint64),
            np.ascontiguousarray(starts, np.int64), np.ascontiguousarray(cols, np.int64), int(num_bits),
            np.ascontiguousarray(ks, np.int64), bool(drop_last_item), np.ascontiguousarray(harmonic, np.float64),
            hist, hist_rel, num_rel, ap_sum, topk[0], topk[1], tie_sum, topk[2], topk[3])
    return hist, hist_rel, num_rel, ap_sum, topk[0], topk[1], tie_sum, topk[2], topk[3]
