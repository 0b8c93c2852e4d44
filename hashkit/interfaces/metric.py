"""Metric: a retrieval problem (query and database codes or descriptors with labels) -> named numbers.

Contract
--------
- input :class:`RetrievalProblem`: ``query`` ``(Q, L)`` and ``database`` ``(N, L)`` ±1 codes (``kind="hamming"``)
  or real descriptors (``kind="cosine"``); ``query_labels`` ``(Q, C)`` and ``database_labels`` ``(N, C)``
  multi-hot (relevant = at least one shared label); optional ``relevance`` ``(Q, N)`` bool overriding labels
  (landmark protocols with junk handled by the metric itself).
- output: ``{name: float | list}``, e.g. ``{"map": 0.71, "map_tie_aware": 0.70, "no_relevant_queries": 0}``.
  Keys are the metric's own (``[eval] metrics`` merges the outputs of all metrics into one table, and two
  metrics reporting the same key with different values is an error); the counts ``num_queries``,
  ``num_database`` and ``no_relevant_queries`` may be reported by several.
- ``kinds``: the problem kinds the metric applies to; the evaluation skips it for the others (a Hamming-ball
  metric is not computed on real-valued descriptors).

A :class:`RankingMetric` is computed by hashkit's streamed ranking engine
(:func:`hashkit.evaluation.evaluate`, packed codes, bounded memory): it declares a :class:`RankingRequest`
and picks its figures from the engine's result. The evaluation runs ranking metrics that ask for the same
ranking (kind and options) in one pass; built-in and third-party ranking metrics alike.
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

    #: problem kinds this metric applies to ("hamming" codes, "cosine" descriptors)
    kinds: tuple[str, ...] = ("hamming", "cosine")

    def __call__(self, problem: RetrievalProblem) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


@attrs.frozen
class RankingRequest:
    """What a ranking metric needs from :func:`hashkit.evaluation.evaluate`.

    - ``quantities``: the engine's names beyond mAP@all (always computed): ``"map@k"``, ``"precision@k"``,
      ``"recall@k"``, ``"pr_curve"``, ``"precision_radius"``;
    - ``topk``: cut-offs k for the ``@k`` quantities;
    - ``kind``: rank the problem's vectors as ``"hamming"`` codes or ``"cosine"`` descriptors (``None``: as
      the problem says);
    - ``options``: ``evaluate`` keyword options (``drop_last_item``, ``zero_relevant``, ``relevance_rule``,
      ``map_norm``, ``radius``, ``empty_radius``) as sorted ``(name, value)`` pairs; unset ones take the
      engine's defaults.
    """

    quantities: tuple[str, ...] = ()
    topk: tuple[int, ...] = ()
    kind: str | None = None
    options: tuple[tuple[str, Any], ...] = ()


class RankingMetric(Metric):
    """A metric computed by the streamed ranking engine: :meth:`request` says what to rank and compute,
    :meth:`select` picks this metric's figures from the engine's result."""

    def request(self) -> RankingRequest:  # pragma: no cover - abstract
        raise NotImplementedError

    def select(self, result: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, problem: RetrievalProblem) -> dict[str, Any]:
        from hashkit.evaluation.scoring import run_request

        return self.select(run_request(problem, self.request()))
