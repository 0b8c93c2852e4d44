"""Metric: a retrieval problem (query and database codes or descriptors with labels) -> named numbers.

Contract
--------
- input :class:`RetrievalProblem`: ``query`` ``(Q, L)`` and ``database`` ``(N, L)`` ±1 codes (``kind="hamming"``)
  or real descriptors (``kind="cosine"``); ``query_labels`` ``(Q, C)`` and ``database_labels`` ``(N, C)``
  multi-hot (relevant = at least one shared label); optional ``relevance`` ``(Q, N)`` bool overriding labels
  (landmark protocols with junk handled by the metric itself).
- output: ``{name: float | list}``, e.g. ``{"map": 0.71, "map_tie_aware": 0.70, "no_relevant": 0}``.
"""

from __future__ import annotations

from typing import Any

import attrs
from torch import Tensor


@attrs.frozen
class RetrievalProblem:
    query: Tensor
    database: Tensor
    query_labels: Tensor | None = None
    database_labels: Tensor | None = None
    kind: str = "hamming"
    relevance: Tensor | None = None


class Metric:
    """Base class of metrics."""

    def __call__(self, problem: RetrievalProblem) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError
