"""``precision@k`` and ``recall@k``: the share of the top k that is relevant, and of the relevant items found.

In ``[eval] metrics``, ``"precision@10"`` is short for ``{name = "precision@k", k = [10]}``.
"""

from __future__ import annotations

import attrs

from hashkit.interfaces import BuildContext
from hashkit_plugins.metrics._ranking_options import EngineMetric, RankingOptions, positive_ks


@attrs.frozen
class TopKConfig(RankingOptions):
    #: cut-offs k
    k: tuple[int, ...] = attrs.field(default=(10, 100), converter=tuple, validator=positive_ks)


def _top_k(cfg: TopKConfig, which: str) -> EngineMetric:
    keys = [key for k in cfg.k for key in (f"{which}@{k}", f"{which}@{k}_tie_aware")]
    return EngineMetric(cfg, keys, quantities=(f"{which}@k",), topk=cfg.k)


def build_precision_at_k(cfg: TopKConfig, ctx: BuildContext) -> EngineMetric:
    """Precision@k (stable ties and tie-aware expectation) for each configured k."""
    return _top_k(cfg, "precision")


def build_recall_at_k(cfg: TopKConfig, ctx: BuildContext) -> EngineMetric:
    """Recall@k (stable ties and tie-aware expectation) for each configured k."""
    return _top_k(cfg, "recall")


def components(register):
    register("metric", "precision@k", build_precision_at_k, config=TopKConfig)
    register("metric", "recall@k", build_recall_at_k, config=TopKConfig)
