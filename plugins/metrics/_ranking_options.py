"""Options shared by the built-in ranking metrics (private: not a component module)."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from hashkit.evaluation import evaluate
from hashkit.interfaces import RetrievalProblem


@attrs.frozen
class RankingOptions:
    #: official SEMICON/DeepHash-pytorch parity: drop the last-ranked database item
    drop_last_item: bool = False
    #: a query without relevant items: AP 0 and counted ("count_as_zero") or left out of the mean ("exclude")
    zero_relevant: Literal["count_as_zero", "exclude"] = "count_as_zero"
    #: relevant = shares a label ("shared_label") or label dot product > 0 ("dot", the official rule)
    relevance_rule: Literal["shared_label", "dot"] = "shared_label"


def run_evaluate(problem: RetrievalProblem, cfg: RankingOptions, kind: str | None = None, **options: Any
                 ) -> dict[str, Any]:
    """:func:`hashkit.evaluation.evaluate` with the shared options of ``cfg`` (and ``kind`` forced if given)."""
    if kind is not None and problem.kind != kind:
        problem = attrs.evolve(problem, kind=kind)
    return evaluate(problem, drop_last_item=cfg.drop_last_item, zero_relevant=cfg.zero_relevant,
                    relevance_rule=cfg.relevance_rule, **options)


def positive_ks(instance, attribute, value) -> None:
    """attrs validator: a non-empty tuple of positive cut-offs."""
    if not value or any(int(k) <= 0 for k in value):
        raise ValueError(f"{attribute.name} must be a non-empty list of positive integers, found {value!r}")


COUNT_KEYS = ("num_queries", "num_database", "no_relevant_queries")


def pick(result: dict[str, Any], prefixes: tuple[str, ...]) -> dict[str, Any]:
    """The entries of ``result`` whose key starts with one of ``prefixes``, plus the query counts."""
    out = {k: v for k, v in result.items() if k.startswith(prefixes)}
    out.update({k: result[k] for k in COUNT_KEYS})
    return out
