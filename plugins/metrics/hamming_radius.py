"""``pr_curve`` and ``precision_radius``: precision and recall of Hamming balls ``{d <= r}`` (Hamming codes only)."""

from __future__ import annotations

from typing import Literal

import attrs

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, RetrievalProblem
from hashkit_plugins.metrics._ranking_options import EngineMetric, RankingOptions


@attrs.frozen
class PrCurveConfig(RankingOptions):
    pass


@attrs.frozen
class PrecisionRadiusConfig(RankingOptions):
    #: Hamming radius of the retrieved ball
    radius: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    #: a query whose ball is empty counts as precision 0 ("zero", thuml) or is left out ("exclude")
    empty: Literal["zero", "exclude"] = "zero"


class HammingBall(EngineMetric):
    kinds = ("hamming",)

    def __call__(self, problem: RetrievalProblem) -> dict:
        if problem.kind != "hamming":
            raise ContractError(f"metric {self.keys[0]!r} needs Hamming codes, the problem is {problem.kind!r}")
        return super().__call__(problem)


def build_pr_curve(cfg: PrCurveConfig, ctx: BuildContext) -> HammingBall:
    """Mean precision and recall of the Hamming ball at every radius 0..L (a PR curve)."""
    return HammingBall(cfg, ("pr_curve",), quantities=("pr_curve",))


def build_precision_radius(cfg: PrecisionRadiusConfig, ctx: BuildContext) -> HammingBall:
    """Precision and recall within Hamming radius r (default 2) and the number of empty balls."""
    r = cfg.radius
    keys = (f"precision@radius{r}", f"recall@radius{r}", f"empty_radius{r}_queries", "empty_radius")
    return HammingBall(cfg, keys, quantities=("precision_radius",), radius=r, empty_radius=cfg.empty)


def components(register):
    register("metric", "pr_curve", build_pr_curve, config=PrCurveConfig)
    register("metric", "precision_radius", build_precision_radius, config=PrecisionRadiusConfig)
