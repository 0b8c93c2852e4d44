"""Precision and recall of Hamming balls ``{d <= r}``, from per-query distance histograms.

For query ``q`` with histograms ``h[v]`` (all items at distance ``v``) and ``h_rel[v]`` (relevant ones), the
ball of radius ``r`` retrieves ``n_r = sum_{v<=r} h[v]`` items of which ``m_r = sum_{v<=r} h_rel[v]`` are
relevant: precision ``m_r / n_r`` (0 when ``n_r = 0``, "empty"), recall ``m_r / R``. Curves average over
queries; ``O(L)`` per query after the histograms.
"""

from __future__ import annotations

import numpy as np


class RadiusAccumulator:
    """Sums per-query precision/recall at every radius ``0..num_bits`` over query blocks."""

    def __init__(self, num_bits: int, radius: int = 2):
        self.num_bits = int(num_bits)
        self.radius = min(int(radius), self.num_bits)
        v = self.num_bits + 1
        # index 0: all queries; index 1: queries with at least one relevant item
        self.precision = np.zeros((2, v))
        self.recall = np.zeros((2, v))
        self.nonempty = np.zeros((2, v))
        self.queries = np.zeros(2)

    def add(self, hist: np.ndarray, hist_rel: np.ndarray) -> None:
        n = np.cumsum(hist, axis=1).astype(np.float64)
        m = np.cumsum(hist_rel, axis=1).astype(np.float64)
        total_rel = m[:, -1:]
        precision = np.where(n > 0, m / np.maximum(n, 1.0), 0.0)
        recall = m / np.maximum(total_rel, 1.0)
        for slot, rows in enumerate((slice(None), total_rel[:, 0] > 0)):
            self.precision[slot] += precision[rows].sum(axis=0)
            self.recall[slot] += recall[rows].sum(axis=0)
            self.nonempty[slot] += (n[rows] > 0).sum(axis=0)
            self.queries[slot] += precision[rows].shape[0]

    def merge(self, other: "RadiusAccumulator") -> None:
        """Add the sums of another accumulator (same ``num_bits``)."""
        for name in ("precision", "recall", "nonempty", "queries"):
            getattr(self, name).__iadd__(getattr(other, name))

    def curve(self, has_rel_only: bool = False) -> dict[str, list]:
        """Mean precision and recall of the ball at each radius; empty balls count as precision 0."""
        slot = int(has_rel_only)
        q = max(self.queries[slot], 1.0)
        return {
            "radius": list(range(self.num_bits + 1)),
            "precision": (self.precision[slot] / q).tolist(),
            "recall": (self.recall[slot] / q).tolist(),
        }

    def at_radius(self, empty: str = "zero", has_rel_only: bool = False) -> dict[str, float | int]:
        """``precision@radius{r}`` (empty balls: 0 with ``empty="zero"``, left out with ``"exclude"``), recall, and
        the number of queries whose ball is empty."""
        slot, r = int(has_rel_only), self.radius
        q = self.queries[slot]
        nonempty = self.nonempty[slot, r]
        denom = q if empty == "zero" else nonempty
        return {
            f"precision@radius{r}": float(self.precision[slot, r] / denom) if denom else 0.0,
            f"recall@radius{r}": float(self.recall[slot, r] / q) if q else 0.0,
            f"empty_radius{r}_queries": int(q - nonempty),
            "empty_radius": empty,
        }
