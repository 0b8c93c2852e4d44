"""``map@k``: mAP of the top-k ranking with an explicit normalisation (see docs/evaluation.md §3).

In ``[eval] metrics``, ``"map@100"`` is short for ``{name = "map@k", k = [100]}``.
"""

from __future__ import annotations

from typing import Literal

import attrs

from hashkit.interfaces import BuildContext
from hashkit_plugins.metrics._ranking_options import EngineMetric, RankingOptions, positive_ks


@attrs.frozen
class MapAtKConfig(RankingOptions):
    #: cut-offs k
    k: tuple[int, ...] = attrs.field(default=(100,), converter=tuple, validator=positive_ks)
    #: divide the top-k sum by the hits inside the top k (DeepHash convention), by min(k, R), or by R
    norm: Literal["hits_in_topk", "min_k_R", "R"] = "hits_in_topk"


def build_map_at_k(cfg: MapAtKConfig, ctx: BuildContext) -> EngineMetric:
    """mAP@k for each configured k, normalised as configured (the norm is returned beside the numbers)."""
    keys = [key for k in cfg.k for key in (f"map@{k}", f"map@{k}_tie_aware")] + ["map_at_k_norm"]
    return EngineMetric(cfg, keys, quantities=("map@k",), topk=cfg.k, map_norm=cfg.norm)


def components(register):
    register("metric", "map@k", build_map_at_k, config=MapAtKConfig)
