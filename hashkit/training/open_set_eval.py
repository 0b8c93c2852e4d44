"""Scoring a model under the four open-set protocols of a seen/unseen class split.

The network encodes (eval mode, evaluation transform, dataset order) the seen and unseen queries, the unseen
database rows and, for an ``"encoded"`` database, the seen database rows. Each kind of ``recipe.eval.database``
then gives a seen database part: ``"encoded"`` the network's codes, ``"learned"`` / ``"label"`` the training
protocol's codes of its training rows (ADSH's ``B`` / a label-derived code table), which are the seen
database rows in the fine-grained protocol. The unseen database part is always encoded
(:mod:`hashkit.evaluation.open_set` builds the four problems). Every result carries ``database_parts``
(e.g. ``"D_s learned + D_u encoded"``).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from hashkit.evaluation.open_set import PROTOCOLS, CodedPart, database_parts, protocol_problem
from hashkit.interfaces import OpenSet
from hashkit.recipe.schema import Recipe
from hashkit.training.evaluate import (PROVIDED_KINDS, Encoded, EvalResult, encode_split, provided_database,
                                      recipe_metrics, score_problem)


def _score_all(parts: dict[str, CodedPart], num_seen: int, recipe: Recipe, kind: str, metrics,
               problem_kind: str = "hamming") -> dict[str, dict[str, Any]]:
    out = {}
    for protocol in PROTOCOLS:
        problem = protocol_problem(protocol, num_seen=num_seen, kind=problem_kind, **parts)
        out[protocol] = {**score_problem(problem, recipe, metrics), "database_parts": database_parts(protocol, kind)}
    return out


def evaluate_open_set(model: nn.Module, recipe: Recipe, open_set: OpenSet, *,
                      learned: tuple[Tensor, Tensor] | None, device: torch.device, progress: bool = False,
                      provided_kind: str = "learned", encode: Callable[..., Encoded] = encode_split) -> EvalResult:
    """The four protocols for every kind of ``recipe.eval.database`` (and the descriptor when asked).

    ``learned`` is ``(codes (n, L), labels (n, C))`` of the training rows from the protocol (all ``C`` label
    columns), or None; ``provided_kind`` is the protocol's ``database`` (``"learned"`` or ``"label"``).
    Returns ``scores`` = the seen@seen results and ``protocols`` = ``{protocol: {kind: metrics}}``.
    """
    ev = recipe.eval
    kinds = tuple(ev.database)
    metrics = recipe_metrics(recipe)
    real_valued = getattr(model, "hash_head", None) is None
    want_desc = ev.descriptor or real_valued

    def run(split, limit: int, what: str) -> Encoded:
        return encode(model, split, recipe, device, limit=limit, descriptors=want_desc, progress=progress,
                      desc=f"encode {what}")

    q_seen = run(open_set.query_seen, ev.max_queries, "seen queries")
    q_unseen = run(open_set.query_unseen, ev.max_queries, "unseen queries")
    d_unseen = run(open_set.database_unseen, ev.max_database, "unseen database")
    d_seen = run(open_set.database_seen, ev.max_database, "seen database") \
        if "encoded" in kinds or want_desc else None
    protocols: dict[str, dict[str, dict[str, Any]]] = {p: {} for p in PROTOCOLS}
    codes: dict[str, Tensor] = {"query_labels": q_seen.labels, "query_unseen_labels": q_unseen.labels,
                                "database_unseen_labels": d_unseen.labels}
    if not real_valued:
        codes.update(query=q_seen.codes, query_unseen=q_unseen.codes, database_unseen=d_unseen.codes)
        common = {"query_seen": CodedPart(q_seen.codes, q_seen.labels),
                  "query_unseen": CodedPart(q_unseen.codes, q_unseen.labels),
                  "database_unseen": CodedPart(d_unseen.codes, d_unseen.labels)}
        for kind in kinds:
            if kind in PROVIDED_KINDS:
                db_codes, db_labels = provided_database(kind, provided_kind, learned, recipe)
            else:
                db_codes, db_labels = d_seen.codes, d_seen.labels
            codes[f"database_{kind}"], codes[f"database_{kind}_labels"] = db_codes, db_labels
            results = _score_all({**common, "database_seen": CodedPart(db_codes, db_labels)},
                                 open_set.num_seen, recipe, kind, metrics)
            for protocol, res in results.items():
                protocols[protocol][kind] = res
    if want_desc:
        parts = {"query_seen": CodedPart(q_seen.descriptors, q_seen.labels),
                 "query_unseen": CodedPart(q_unseen.descriptors, q_unseen.labels),
                 "database_seen": CodedPart(d_seen.descriptors, d_seen.labels),
                 "database_unseen": CodedPart(d_unseen.descriptors, d_unseen.labels)}
        for protocol, res in _score_all(parts, open_set.num_seen, recipe, "encoded", metrics, "cosine").items():
            protocols[protocol]["descriptor"] = res
    return EvalResult(scores=protocols["seen@seen"], codes=codes, protocols=protocols)
