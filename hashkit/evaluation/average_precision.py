"""Per-query ranking statistics for one block of queries: AP (stable ties), tie-aware expected AP, top-k sums.

Three kernels give the same :class:`BlockStats`:

- :func:`packed_hamming_block_stats`: packed codes in, the entry point for Hamming evaluation. With numba
  installed (``fast`` extra) it runs the fused compiled counting pass of :mod:`hashkit.evaluation.hamming_ranks`
  (distances are never stored); otherwise, or with ``HASHKIT_HAMMING_KERNEL=numpy``, it computes the distance
  block with numpy and calls :func:`hamming_block_stats`. Both give the same values (tested).
- :func:`hamming_block_stats`: integer distances ``0..L`` (Hamming). No sorting: the rank of a relevant item
  ``j`` under the stable order (distance, then database index) is
  ``#{d_i < d_j} + #{i <= j : d_i = d_j}``; the first term comes from per-query distance histograms, the
  second from histograms over database index blocks of size ``S`` plus a scan of ``S`` entries inside the
  item's block. Cost per query ``O(N + (N/S)(L+1) + R S)``.
- :func:`sorted_block_stats`: any real-valued distance (cosine); a stable ``argsort`` per query.

Tie-aware AP (McSherry & Najork 2008, closed form) takes tie groups in increasing distance; a group of ``n``
items with ``r`` relevant, preceded by ``p`` items of which ``c`` are relevant, adds

    sum_{i=1..n} (r/n) (c + 1 + (i-1)(r-1)/(n-1)) / (p+i)
      = (r/n) [ (a - b(p+1)) (H(p+n) - H(p)) + b n ],   a = c + 1,  b = (r-1)/(n-1)  (b = 0 if n = 1)

to ``sum_j rel_j P@j`` (``H`` = harmonic numbers); positions beyond ``k`` are cut for the top-k variants.
"""

from __future__ import annotations

import functools
import os
from typing import Sequence

import attrs
import numpy as np

from hashkit.codes.packing import hamming_distances
from hashkit.errors import ContractError
from hashkit.evaluation.harmonic import HARMONIC_SMALL, harmonic_difference

__all__ = ["BlockStats", "HAMMING_KERNELS", "hamming_block_stats", "hamming_kernel", "harmonic_difference",
           "packed_hamming_block_stats", "sorted_block_stats", "tie_aware_sums"]

#: values of ``HASHKIT_HAMMING_KERNEL`` / the ``backend`` argument of :func:`packed_hamming_block_stats`
HAMMING_KERNELS = ("auto", "numba", "numpy")


@attrs.define
class BlockStats:
    """Per-query sums for a block of ``B`` queries (all float64 ``(B,)`` unless said otherwise).

    ``num_relevant`` R; ``ap_sum`` = sum over relevant items of P@rank (stable ties); ``ap_tie_sum`` its
    expectation over orderings inside tie groups; per cut-off ``k`` (dict keys): ``hits[k]`` relevant items
    in the top k, ``ap_sum_k[k]`` the sum restricted to ranks <= k, and their tie-aware expectations
    ``hits_tie[k]``, ``ap_tie_sum_k[k]``. ``hist`` / ``hist_rel`` ``(B, L+1)`` distance histograms of all and
    of relevant items (Hamming kernel only, else None).
    """

    num_relevant: np.ndarray
    ap_sum: np.ndarray
    ap_tie_sum: np.ndarray
    hits: dict[int, np.ndarray]
    ap_sum_k: dict[int, np.ndarray]
    hits_tie: dict[int, np.ndarray]
    ap_tie_sum_k: dict[int, np.ndarray]
    hist: np.ndarray | None = None
    hist_rel: np.ndarray | None = None


def tie_aware_sums(group_sizes: np.ndarray, group_relevant: np.ndarray, ks: Sequence[int]
                   ) -> tuple[np.ndarray, dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Expected ``sum_j rel_j P@j`` for groups ``(B, G)`` given in rank order (sizes ``n``, relevant ``r``).

    Returns ``(total (B,), {k: expected sum over ranks <= k}, {k: expected hits in the top k})``.
    """
    n = group_sizes.astype(np.float64)
    r = group_relevant.astype(np.float64)
    p = np.cumsum(n, axis=1) - n
    c = np.cumsum(r, axis=1) - r
    safe_n = np.maximum(n, 1.0)
    prob = r / safe_n
    slope = np.where(n > 1, (r - 1) / np.maximum(n - 1, 1.0), 0.0)
    offset = (c + 1) - slope * (p + 1)

    def partial(m: np.ndarray) -> np.ndarray:
        gain = offset * harmonic_difference(p, m) + slope * m
        return (prob * gain).sum(axis=1)

    total = partial(n)
    sums_k: dict[int, np.ndarray] = {}
    hits_k: dict[int, np.ndarray] = {}
    for k in ks:
        m = np.clip(k - p, 0, n)
        sums_k[k] = partial(m)
        hits_k[k] = (prob * m).sum(axis=1)
    return total, sums_k, hits_k


def _empty_topk(ks: Sequence[int], b: int) -> dict[int, np.ndarray]:
    return {k: np.zeros(b) for k in ks}


@functools.lru_cache(maxsize=4)
def _key_base(b: int, n: int, s: int, v: int) -> np.ndarray:
    """``(row * nb + j // s) * v`` for a ``(b, n)`` block (read-only, cached: the same for every block)."""
    nb = -(-n // s)
    base = (np.arange(b)[:, None] * nb + (np.arange(n) // s)[None, :]) * v
    base.setflags(write=False)
    return base


@functools.lru_cache(maxsize=4)
def _lower_triangle(s: int) -> np.ndarray:
    """``tri[p, t] = t <= p`` (bool ``(s, s)``, read-only)."""
    tri = np.tril(np.ones((s, s), dtype=bool))
    tri.setflags(write=False)
    return tri


def hamming_block_stats(dist: np.ndarray, pairs: tuple[np.ndarray, np.ndarray], num_bits: int,
                        ks: Sequence[int] = (), drop_last_item: bool = False, index_block: int | None = None
                        ) -> BlockStats:
    """Statistics of a query block from integer distances ``dist (B, N)`` in ``0..num_bits``.

    ``pairs = (rows, cols)``: the relevant (query row, database index) pairs sorted by row, then index.
    Ranking: increasing distance, ties by increasing database index. ``drop_last_item`` removes, per query,
    the item ranked last (largest distance, then largest index) before anything is computed.
    """
    b, n = dist.shape
    v = num_bits + 1
    qi, j = (np.asarray(a, dtype=np.intp) for a in pairs)
    if index_block is None:  # balance the (N/S)(L+1) prefix work against the R*S window scans
        mean_rel = max(len(qi) / max(b, 1), 1.0)
        index_block = int(np.clip(2 ** round(np.log2(np.sqrt(n * v / mean_rel))), 16, 4096))
    s = index_block
    nb = -(-n // s)
    rows = np.arange(b)
    # per-query histograms over (index block, distance): key = (row * nb + block) * V + distance
    key = np.add(_key_base(b, n, s, v), dist, dtype=np.intp)
    block_hist = np.bincount(key.ravel(), minlength=b * nb * v).reshape(b, nb, v)
    del key
    hist = block_hist.sum(axis=1)
    if drop_last_item and n:
        dmax = dist.max(axis=1)
        last = n - 1 - np.argmax((dist == dmax[:, None])[:, ::-1], axis=1)
        hist[rows, dmax] -= 1
        keep = j != last[qi]
        qi, j = qi[keep], j[keep]
    d = dist[qi, j].astype(np.intp)
    blk = j // s
    pos = j - blk * s
    # items ranked before j's index block: smaller distance anywhere, or equal distance in an earlier block.
    # In the (row, distance, block) layout both are an exclusive running sum over one flattened row.
    running = np.ascontiguousarray(block_hist.transpose(0, 2, 1)).reshape(b, v * nb)
    running = running.cumsum(axis=1)
    flat = d * nb + blk
    before = np.where(flat > 0, running[qi, np.maximum(flat - 1, 0)], 0)
    # same-distance items up to j inside j's index block
    if nb * s != n:
        padded = np.zeros((b, nb * s), dtype=dist.dtype)
        padded[:, :n] = dist
    else:
        padded = dist
    window = padded.reshape(b, nb, s)[qi, blk]
    same = window == d[:, None].astype(dist.dtype)
    same &= _lower_triangle(s)[pos]
    rank = before + np.count_nonzero(same, axis=1)
    # rank among relevant items: pairs are sorted by (row, index); sort stably by (row, distance)
    order = np.argsort(qi * v + d, kind="stable")
    num_rel = np.bincount(qi, minlength=b)
    start = np.cumsum(num_rel) - num_rel
    rr = np.empty(len(qi), dtype=np.float64)
    rr[order] = np.arange(len(qi)) - start[qi[order]] + 1
    prec = rr / rank
    ap_sum = np.bincount(qi, weights=prec, minlength=b)
    hits, ap_k = {}, {}
    for k in ks:
        inside = rank <= k
        hits[k] = np.bincount(qi, weights=inside.astype(np.float64), minlength=b)
        ap_k[k] = np.bincount(qi, weights=prec * inside, minlength=b)
    hist_rel = np.bincount(qi * v + d, minlength=b * v).reshape(b, v)
    tie_total, tie_k, tie_hits = tie_aware_sums(hist, hist_rel, ks)
    return BlockStats(num_rel.astype(np.float64), ap_sum, tie_total, hits, ap_k, tie_hits, tie_k, hist, hist_rel)


def hamming_kernel(backend: str | None = None) -> str:
    """The Hamming kernel that runs: ``"numba"`` or ``"numpy"``.

    ``backend`` (default: the ``HASHKIT_HAMMING_KERNEL`` environment variable, else ``"auto"``): ``"auto"``
    takes numba when it is installed; ``"numba"`` without numba is an error.
    """
    choice = backend or os.environ.get("HASHKIT_HAMMING_KERNEL") or "auto"
    if choice not in HAMMING_KERNELS:
        raise ContractError(f"Hamming kernel must be one of {HAMMING_KERNELS}, found {choice!r} "
                            f"(HASHKIT_HAMMING_KERNEL or backend=)")
    if choice == "numpy":
        return choice
    from hashkit.evaluation import hamming_ranks  # imports numba (seconds) on the first Hamming evaluation only

    if choice == "numba" and not hamming_ranks.AVAILABLE:
        raise ContractError("the numba Hamming kernel was requested but numba is not installed "
                            "(pip install 'hashkit[fast]')")
    return "numba" if hamming_ranks.AVAILABLE else "numpy"


def packed_hamming_block_stats(query_words: np.ndarray, database_words: np.ndarray, num_bits: int,
                               pairs: tuple[np.ndarray, np.ndarray], ks: Sequence[int] = (),
                               drop_last_item: bool = False, backend: str | None = None) -> BlockStats:
    """Statistics of a query block from packed codes (uint64 words ``(B, W)``, ``(N, W)``; see
    :func:`hashkit.codes.packing.to_words`), with the ranking and ``pairs`` of :func:`hamming_block_stats`.

    ``backend``: see :func:`hamming_kernel`.
    """
    if hamming_kernel(backend) == "numpy":
        dist = hamming_distances(query_words, database_words)
        return hamming_block_stats(dist, pairs, num_bits, ks, drop_last_item)
    b = query_words.shape[0]
    rows, cols = pairs
    counts = np.bincount(np.asarray(rows, dtype=np.intp), minlength=b)
    starts = np.zeros(b + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    ks = list(ks)
    from hashkit.evaluation.hamming_ranks import relevant_rank_stats

    hist, hist_rel, num_rel, ap_sum, hits, ap_k, tie_total, tie_hits, tie_k = relevant_rank_stats(
        query_words, database_words, num_bits, starts, cols, np.asarray(ks, dtype=np.int64), drop_last_item,
        HARMONIC_SMALL)
    return BlockStats(num_rel, ap_sum, tie_total, dict(zip(ks, hits)), dict(zip(ks, ap_k)), dict(zip(ks, tie_hits)),
                      dict(zip(ks, tie_k)), hist, hist_rel)


def sorted_block_stats(dist: np.ndarray, rel: np.ndarray, ks: Sequence[int] = (),
                       drop_last_item: bool = False) -> BlockStats:
    """Statistics of a query block from real distances ``dist (B, N)`` (smaller = better) by stable argsort."""
    b, n = dist.shape
    order = np.argsort(dist, axis=1, kind="stable")
    sd = np.take_along_axis(dist, order, axis=1)
    srel = np.take_along_axis(np.asarray(rel, dtype=bool), order, axis=1)
    if drop_last_item and n:
        sd, srel, n = sd[:, :-1], srel[:, :-1], n - 1
    if n == 0:
        zeros = np.zeros(b)
        return BlockStats(zeros, zeros, zeros, _empty_topk(ks, b), _empty_topk(ks, b), _empty_topk(ks, b),
                          _empty_topk(ks, b))
    relf = srel.astype(np.float64)
    rr = np.cumsum(relf, axis=1)
    prec = relf * rr / np.arange(1, n + 1)[None, :]
    hits = {k: rr[:, min(k, n) - 1].copy() for k in ks}
    ap_k = {k: prec[:, :k].sum(axis=1) for k in ks}
    # tie groups in rank order
    new_group = np.ones((b, n), dtype=bool)
    new_group[:, 1:] = sd[:, 1:] != sd[:, :-1]
    gid = np.cumsum(new_group, axis=1) - 1
    flat = (np.arange(b)[:, None] * n + gid).ravel()
    sizes = np.bincount(flat, minlength=b * n).reshape(b, n)
    rel_sizes = np.bincount(flat, weights=relf.ravel(), minlength=b * n).reshape(b, n)
    tie_total, tie_k, tie_hits = tie_aware_sums(sizes, rel_sizes, ks)
    return BlockStats(rr[:, -1].copy(), prec.sum(axis=1), tie_total, hits, ap_k, tie_hits, tie_k)
