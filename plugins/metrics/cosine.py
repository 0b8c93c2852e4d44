"""``cosine_map``, ``cosine_map@k``, ``cosine_precision@k``: ranking metrics of real descriptors by cosine similarity.

The problem's ``query`` / ``database`` are taken as real-valued descriptors whatever their ``kind``; ties
(equal similarity) are ordered by database index, and the tie-aware expectation is reported too.
"""

from __future__ import annotations

from typing import Literal

import attrs

from hashkit.interfaces import BuildContext, Metric, RetrievalProblem
from hashkit_plugins.metrics._ranking_options import RankingOptions, pick, positive_ks, run_evaluate


@attrs.frozen
class CosineMapConfig(RankingOptions):
    pass


@attrs.frozen
class CosineTopKConfig(RankingOptions):
    #: cut-offs k
    k: tuple[int, ...] = attrs.field(default=(10, 100), converter=tuple, validator=positive_ks)
    #: mAP@k normalisation (cosine_map@k only)
    norm: Literal["hits_in_topk", "min_k_R", "R"] = "hits_in_topk"


class CosineMetric(Metric):
    def __init__(self, cfg, which: str):
        self.cfg = cfg
        self.which = which

    def __call__(self, problem: RetrievalProblem) -> dict:
        if self.which == "map":
            return pick(run_evaluate(problem, self.cfg, kind="cosine"), ("map",))
        ks = self.cfg.k
        metric = "map@k" if self.which == "map@k" else "precision@k"
        res = run_evaluate(problem, self.cfg, kind="cosine", metrics=(metric,), topk=ks, map_norm=self.cfg.norm)
        prefix = "map" if self.which == "map@k" else "precision"
        return pick(res, tuple(f"{prefix}@{k}" for k in ks))


def build_cosine_map(cfg: CosineMapConfig, ctx: BuildContext) -> CosineMetric:
    """mAP@all of real descriptors ranked by cosine similarity (stable and tie-aware)."""
    return CosineMetric(cfg, "map")


def build_cosine_map_at_k(cfg: CosineTopKConfig, ctx: BuildContext) -> CosineMetric:
    """mAP@k of real descriptors ranked by cosine similarity."""
    return CosineMetric(cfg, "map@k")


def build_cosine_precision_at_k(cfg: CosineTopKConfig, ctx: BuildContext) -> CosineMetric:
    """Precision@k of real descriptors ranked by cosine similarity."""
    return CosineMetric(cfg, "precision@k")


def components(register):
    register("metric", "cosine_map", build_cosine_map, config=CosineMapConfig)
    register("metric", "cosine_map@k", build_cosine_map_at_k, config=CosineTopKConfig)
    register("metric", "cosine_precision@k", build_cosine_precision_at_k, config=CosineTopKConfig)
