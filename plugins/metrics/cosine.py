"""``cosine_map``, ``cosine_map@k``, ``cosine_precision@k``: ranking metrics of real descriptors by cosine similarity.

The problem's ``query`` / ``database`` are taken as real-valued descriptors whatever their ``kind``; ties
(equal similarity) are ordered by database index, and the tie-aware expectation is reported too. Keys carry
the ``cosine_`` prefix (``cosine_map``, ``cosine_map@10``, ``cosine_precision@10_tie_aware``), so they sit
beside the Hamming figures of the same codes.
"""

from __future__ import annotations

from typing import Literal

import attrs

from hashkit.interfaces import BuildContext
from hashkit_plugins.metrics._ranking_options import EngineMetric, RankingOptions, positive_ks


@attrs.frozen
class CosineMapConfig(RankingOptions):
    pass


@attrs.frozen
class CosineTopKConfig(RankingOptions):
    #: cut-offs k
    k: tuple[int, ...] = attrs.field(default=(10, 100), converter=tuple, validator=positive_ks)
    #: mAP@k normalisation (cosine_map@k only)
    norm: Literal["hits_in_topk", "min_k_R", "R"] = "hits_in_topk"


def _cosine(cfg, keys, **request) -> EngineMetric:
    return EngineMetric(cfg, keys, kind="cosine", prefix="cosine_", **request)


def build_cosine_map(cfg: CosineMapConfig, ctx: BuildContext) -> EngineMetric:
    """mAP@all of real descriptors ranked by cosine similarity (stable and tie-aware)."""
    return _cosine(cfg, ("map", "map_tie_aware"))


def build_cosine_map_at_k(cfg: CosineTopKConfig, ctx: BuildContext) -> EngineMetric:
    """mAP@k of real descriptors ranked by cosine similarity."""
    keys = [key for k in cfg.k for key in (f"map@{k}", f"map@{k}_tie_aware")]
    return _cosine(cfg, keys, quantities=("map@k",), topk=cfg.k, map_norm=cfg.norm)


def build_cosine_precision_at_k(cfg: CosineTopKConfig, ctx: BuildContext) -> EngineMetric:
    """Precision@k of real descriptors ranked by cosine similarity."""
    keys = [key for k in cfg.k for key in (f"precision@{k}", f"precision@{k}_tie_aware")]
    return _cosine(cfg, keys, quantities=("precision@k",), topk=cfg.k)


def components(register):
    register("metric", "cosine_map", build_cosine_map, config=CosineMapConfig)
    register("metric", "cosine_map@k", build_cosine_map_at_k, config=CosineTopKConfig)
    register("metric", "cosine_precision@k", build_cosine_precision_at_k, config=CosineTopKConfig)
