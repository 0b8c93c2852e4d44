"""``precision@k`` and ``recall@k``: the share of the top k that is relevant, and of the relevant items found."""

from __future__ import annotations

import attrs

from hashkit.interfaces import BuildContext, Metric, RetrievalProblem
from hashkit_plugins.metrics._ranking_options import RankingOptions, pick, positive_ks, run_evaluate


@attrs.frozen
class TopKConfig(RankingOptions):
    #: cut-offs k
    k: tuple[int, ...] = attrs.field(default=(10, 100), converter=tuple, validator=positive_ks)


class TopKRate(Metric):
    def __init__(self, cfg: TopKConfig, which: str):
        self.cfg = cfg
        self.which = which

    def __call__(self, problem: RetrievalProblem) -> dict:
        res = run_evaluate(problem, self.cfg, metrics=(f"{self.which}@k",), topk=self.cfg.k)
        return pick(res, tuple(f"{self.which}@{k}" for k in self.cfg.k))


def build_precision_at_k(cfg: TopKConfig, ctx: BuildContext) -> TopKRate:
    """Precision@k (stable ties and tie-aware expectation) for each configured k."""
    return TopKRate(cfg, "precision")


def build_recall_at_k(cfg: TopKConfig, ctx: BuildContext) -> TopKRate:
    """Recall@k (stable ties and tie-aware expectation) for each configured k."""
    return TopKRate(cfg, "recall")


def components(register):
    register("metric", "precision@k", build_precision_at_k, config=TopKConfig)
    register("metric", "recall@k", build_recall_at_k, config=TopKConfig)
