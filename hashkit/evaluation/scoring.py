"""Scoring a retrieval problem with registered metric components: what ``[eval] metrics`` runs.

Every metric name goes through the registry, built-in (``map``, ``map@k``, ``precision@k``, ``recall@k``,
``pr_curve``, ``precision_radius``, ``cosine_*``, ``revisited_map``) or from a plugin. Ranking metrics
(:class:`~hashkit.interfaces.RankingMetric`) that ask for the same ranking (kind and options) share one
pass of the streamed engine :func:`hashkit.evaluation.evaluate`; other metrics are called on the problem.
The outputs are merged into one flat dict.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import attrs

from hashkit.errors import ContractError
from hashkit.interfaces import ComponentRef, Metric, RankingMetric, RankingRequest, RetrievalProblem

#: facts about the problem and the options used, reported once (taken from the first metric that gives them)
INFO_KEYS = ("kind", "relevance", "zero_relevant", "drop_last_item", "map_at_k_norm", "empty_radius", "code_length",
             "num_queries", "num_database", "no_relevant_queries")

#: the engine's options and defaults (a request's options are filled with these, so equal rankings group)
ENGINE_OPTIONS = {"drop_last_item": False, "zero_relevant": "count_as_zero", "relevance_rule": "shared_label",
                  "map_norm": "hits_in_topk", "radius": 2, "empty_radius": "zero"}


def _options(request: RankingRequest) -> tuple[tuple[str, Any], ...]:
    unknown = sorted(set(dict(request.options)) - set(ENGINE_OPTIONS))
    if unknown:
        raise ContractError(f"ranking request has unknown options {unknown}; known: {sorted(ENGINE_OPTIONS)}")
    return tuple(sorted({**ENGINE_OPTIONS, **dict(request.options)}.items()))


def run_request(problem: RetrievalProblem, request: RankingRequest) -> dict[str, Any]:
    """One pass of the ranking engine for ``request`` (the problem ranked as ``request.kind`` if set)."""
    return _run(problem, request.kind, _options(request), request.quantities, request.topk)


def _run(problem: RetrievalProblem, kind: str | None, options, quantities: Iterable[str], topk: Iterable[int]):
    from hashkit.evaluation.api import evaluate

    if kind is not None and problem.kind != kind:
        problem = attrs.evolve(problem, kind=kind)
    ks = sorted({int(k) for k in topk if int(k) > 0})
    return evaluate(problem, metrics=tuple(dict.fromkeys(quantities)), topk=tuple(ks) or (0,), **dict(options))


def score(problem: RetrievalProblem, metrics: Sequence[tuple[str, Metric]]) -> dict[str, Any]:
    """Every ``(name, metric)`` that applies to ``problem.kind``, merged into one dict.

    Two metrics reporting the same key with different values is a :class:`ContractError` naming both; the
    keys of :data:`INFO_KEYS` are kept from the first metric that reports them.
    """
    applicable = [(n, m) for n, m in metrics if problem.kind in getattr(m, "kinds", ("hamming", "cosine"))]
    groups: dict[tuple, list[tuple[str, RankingMetric, RankingRequest]]] = {}
    for name, metric in applicable:
        if isinstance(metric, RankingMetric):
            request = metric.request()
            groups.setdefault((request.kind or problem.kind, _options(request)), []).append((name, metric, request))
    passes: dict[tuple, dict[str, Any]] = {}
    for key, members in groups.items():
        kind, options = key
        passes[key] = _run(problem, kind, options, (q for _, _, r in members for q in r.quantities),
                           (k for _, _, r in members for k in r.topk))
    merged: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for name, metric in applicable:
        if isinstance(metric, RankingMetric):
            request = metric.request()
            result = passes[(request.kind or problem.kind, _options(request))]
            out = {**{k: result[k] for k in INFO_KEYS if k in result}, **metric.select(result)}
        else:
            out = metric(problem)
        for key, value in out.items():
            if key in INFO_KEYS:
                merged.setdefault(key, value)
            elif key in merged and merged[key] != value:
                raise ContractError(f"metrics {owner[key]!r} and {name!r} both report {key!r} with different values; "
                                    "give one of them other options or leave it out of [eval] metrics")
            else:
                merged[key], owner[key] = value, name
    return merged


def metric_set(refs: Sequence[ComponentRef], *, topk: Sequence[int] = (), drop_last_item: bool = False
               ) -> list[tuple[str, Metric]]:
    """The metric components of ``[eval]``: ``map`` first (model selection and reports read it), the
    ``metrics`` entries, and ``map@k`` for each ``k > 0`` of ``topk``. ``drop_last_item`` turns that option
    on in every metric that has it (official SEMICON parity)."""
    from hashkit.components import build_ref
    from hashkit.interfaces import BuildContext
    from hashkit.recipe.coerce import checked_component_ref

    refs = list(refs)
    if not any(r.name == "map" for r in refs):
        refs.insert(0, checked_component_ref("metric", "map", "eval.metrics"))
    ks = [int(k) for k in topk if int(k) > 0]
    if ks:
        refs.append(checked_component_ref("metric", {"name": "map@k", "k": ks}, "eval.topk"))
    built = []
    for ref in refs:
        if drop_last_item and ref.config is not None and "drop_last_item" in attrs.fields_dict(type(ref.config)):
            ref = attrs.evolve(ref, config=attrs.evolve(ref.config, drop_last_item=True))
        built.append((ref.name, build_ref(ref, BuildContext())))
    return built
