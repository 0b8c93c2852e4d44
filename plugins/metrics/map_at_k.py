"""``map@k``: mAP of the top-k ranking with an explicit normalisation (see docs/evaluation.md §3)."""

from __future__ import annotations

from typing import Literal

import attrs

from hashkit.interfaces import BuildContext, Metric, RetrievalProblem
from hashkit_plugins.metrics._ranking_options import RankingOptions, pick, positive_ks, run_evaluate


@attrs.frozen
class MapAtKConfig(RankingOptions):
    #: cut-offs k
    k: tuple[int, ...] = attrs.field(default=(100,), converter=tuple, validator=positive_ks)
    #: divide the top-k sum by the hits inside the top k (DeepHash convention), by min(k, R), or by R
    norm: Literal["hits_in_topk", "min_k_R", "R"] = "hits_in_topk"


class MapAtK(Metric):
    def __init__(self, cfg: MapAtKConfig):
        self.cfg = cfg

    def __call__(self, problem: RetrievalProblem) -> dict:
        res = run_evaluate(problem, self.cfg, topk=self.cfg.k, map_norm=self.cfg.norm)
        out = pick(res, tuple(f"map@{k}" for k in self.cfg.k))
        out["map_at_k_norm"] = res["map_at_k_norm"]
        return out


def build_map_at_k(cfg: MapAtKConfig, ctx: BuildContext) -> MapAtK:
    """mAP@k for each configured k, normalised as configured (the norm is returned beside the numbers)."""
    return MapAtK(cfg)


def components(register):
    register("metric", "map@k", build_map_at_k, config=MapAtKConfig)
