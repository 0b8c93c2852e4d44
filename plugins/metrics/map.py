"""``map``: mAP over the whole ranking (ties by database index) and the tie-aware expected mAP."""

from __future__ import annotations

import attrs

from hashkit.interfaces import BuildContext, Metric, RetrievalProblem
from hashkit_plugins.metrics._ranking_options import RankingOptions, pick, run_evaluate


@attrs.frozen
class MapConfig(RankingOptions):
    pass


class MeanAveragePrecision(Metric):
    def __init__(self, cfg: MapConfig):
        self.cfg = cfg

    def __call__(self, problem: RetrievalProblem) -> dict:
        return pick(run_evaluate(problem, self.cfg), ("map",))


def build_map(cfg: MapConfig, ctx: BuildContext) -> MeanAveragePrecision:
    """mAP@all (stable ties by database index) with the tie-aware expectation and the zero-relevant count."""
    return MeanAveragePrecision(cfg)


def components(register):
    register("metric", "map", build_map, config=MapConfig)
