"""Relevance between queries and database items, produced one query block at a time.

Rules (``rule`` argument):

- ``"shared_label"`` (default): relevant iff the multi-hot label sets share at least one label
  (``(Y_q > 0) · (Y_db > 0)ᵀ > 0``). Single-label (one-hot) data take a fast path comparing integer labels.
- ``"dot"``: relevant iff the raw label vectors have a positive dot product ``Y_q · Y_dbᵀ > 0`` (the
  official SEMICON / DeepHash-pytorch rule; identical to ``shared_label`` for 0/1 labels).
- an explicit ``(Q, N)`` boolean matrix (``RetrievalProblem.relevance``) overrides labels.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from hashkit.errors import ContractError
from hashkit.search.base import nonzero_2d

RULES = ("shared_label", "dot")


def _numpy(x: Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


def _single_labels(y: np.ndarray) -> np.ndarray | None:
    """Integer labels if every row of ``y`` is one-hot (one positive entry, the rest zero), else None."""
    positive = y > 0
    if not (np.all(positive.sum(axis=1) == 1) and np.all((y == 0) | positive)):
        return None
    return positive.argmax(axis=1)


class Relevance:
    """Builds boolean relevance blocks ``(B, N)`` for query rows ``[start, stop)``."""

    def __init__(self, query_labels=None, database_labels=None, relevance=None, rule: str = "shared_label",
                 num_queries: int | None = None, num_database: int | None = None):
        if rule not in RULES:
            raise ContractError(f"relevance rule must be one of {RULES}, found {rule!r}")
        self.matrix = None
        self.single = None
        if relevance is not None:
            self.matrix = _numpy(relevance).astype(bool, copy=False)
            if self.matrix.shape != (num_queries, num_database):
                raise ContractError(f"relevance must be (Q, N) = ({num_queries}, {num_database}), "
                                    f"found {self.matrix.shape}")
            return
        if query_labels is None or database_labels is None:
            raise ContractError("evaluation needs query_labels and database_labels (or a relevance matrix)")
        yq, yd = _numpy(query_labels), _numpy(database_labels)
        if yq.ndim == 1:
            yq = np.eye(int(max(yq.max(initial=0), yd.max(initial=0))) + 1)[yq]
            yd = np.eye(yq.shape[1])[yd]
        if yq.ndim != 2 or yd.ndim != 2 or yq.shape[1] != yd.shape[1]:
            raise ContractError(f"query labels {yq.shape} and database labels {yd.shape} must be (Q, C) and (N, C)")
        if yq.shape[0] != num_queries or yd.shape[0] != num_database:
            raise ContractError(f"labels have {yq.shape[0]} query / {yd.shape[0]} database rows, codes have "
                                f"{num_queries} / {num_database}")
        sq, sd = _single_labels(yq), _single_labels(yd)
        if sq is not None and sd is not None:
            self.single = (sq, sd)
            # database indices grouped by label (index order kept inside a label) for :meth:`pairs`
            self._by_label = np.argsort(sd, kind="stable")
            counts = np.bincount(sd, minlength=int(max(sq.max(initial=0), sd.max(initial=0))) + 1)
            self._label_count = counts
            self._label_start = np.cumsum(counts) - counts
            return
        if rule == "shared_label":
            yq, yd = (yq > 0), (yd > 0)
        self.query_labels = torch.from_numpy(np.ascontiguousarray(yq, dtype=np.float64))
        self.database_labels_t = torch.from_numpy(np.ascontiguousarray(yd, dtype=np.float64)).T.contiguous()

    def block(self, start: int, stop: int) -> np.ndarray:
        if self.matrix is not None:
            return self.matrix[start:stop]
        if self.single is not None:
            sq, sd = self.single
            return sq[start:stop, None] == sd[None, :]
        return (self.query_labels[start:stop] @ self.database_labels_t).numpy() > 0

    def most_relevant(self) -> int | None:
        """The most relevant database items any query can have when :meth:`pairs` builds no ``(B, N)`` matrix
        (single-label data: the largest label's database count); ``None`` when it does."""
        return int(self._label_count.max(initial=0)) if self.single is not None else None

    def pairs(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Relevant ``(query row - start, database index)`` pairs of rows ``[start, stop)``, sorted by row then index.

        Single-label data skip the ``(B, N)`` matrix: each query takes its label's database items.
        """
        if self.single is None:
            return nonzero_2d(np.ascontiguousarray(self.block(start, stop)))
        labels = self.single[0][start:stop]
        lengths = self._label_count[labels]
        rows = np.repeat(np.arange(len(labels)), lengths)
        first = np.cumsum(lengths) - lengths
        offsets = np.arange(len(rows)) - first[rows] + self._label_start[labels][rows]
        return rows, self._by_label[offsets]
