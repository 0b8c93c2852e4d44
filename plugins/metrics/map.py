"""``map``: mAP over the whole ranking (ties by database index) and the tie-aware expected mAP."""

from __future__ import annotations

import attrs

from hashkit.interfaces import BuildContext
from hashkit_plugins.metrics._ranking_options import EngineMetric, RankingOptions


@attrs.frozen
class MapConfig(RankingOptions):
    pass


def build_map(cfg: MapConfig, ctx: BuildContext) -> EngineMetric:
    """mAP@all (stable ties by database index) with the tie-aware expectation and the zero-relevant count."""
    return EngineMetric(cfg, ("map", "map_tie_aware"))


def components(register):
    register("metric", "map", build_map, config=MapConfig)
