"""Hamming-distance histograms of same-class and different-class (query, database) pairs, and bit balance.

- :func:`distance_histograms`: counts ``(L+1,)`` of the distances ``0..L`` over all relevant pairs (the
  labels share a class, ``(y_q > 0)·(y_b > 0) > 0``) and over all other pairs, streamed over query blocks
  (memory bound ``block_elements`` pairs, like :func:`hashkit.evaluation.evaluate`);
- :func:`bit_balance`: per bit, the fraction of codes with that bit ``+1`` (0.5 = balanced).
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from hashkit.codes.packing import hamming_distances, pack_codes, to_words


def distance_histograms(query: Tensor, database: Tensor, query_labels: Tensor, database_labels: Tensor,
                        block_elements: int = 1 << 22) -> tuple[np.ndarray, np.ndarray]:
    """``(same, different)`` int64 counts ``(L+1,)`` of the Hamming distances of ±1 codes ``(Q, L)``, ``(N, L)``."""
    num_bits = int(query.shape[1])
    if database.shape[1] != num_bits:
        raise ValueError(f"query codes have {num_bits} bits, database codes {database.shape[1]}")
    qw, dw = to_words(pack_codes(query)), to_words(pack_codes(database))
    ql = (query_labels > 0).float()
    dl = (database_labels > 0).float()
    same = np.zeros(num_bits + 1, dtype=np.int64)
    total = np.zeros(num_bits + 1, dtype=np.int64)
    step = max(1, block_elements // max(len(dw), 1))
    for start in range(0, len(qw), step):
        dist = hamming_distances(qw[start:start + step], dw).astype(np.int64)
        relevant = (ql[start:start + step] @ dl.T > 0).numpy()
        same += np.bincount(dist[relevant], minlength=num_bits + 1)
        total += np.bincount(dist.ravel(), minlength=num_bits + 1)
    return same, total - same


def bit_balance(codes: Tensor) -> np.ndarray:
    """Fraction of ``+1`` per bit of ±1 codes ``(n, L)``, float64 ``(L,)``."""
    return (codes.double() > 0).double().mean(dim=0).numpy() if len(codes) else np.full(codes.shape[1], np.nan)


__all__ = ["bit_balance", "distance_histograms"]
