"""``pr_curve`` and ``precision_radius``: precision and recall of Hamming balls ``{d <= r}`` (Hamming codes only)."""

from __future__ import annotations

from typing import Literal

import attrs

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, Metric, RetrievalProblem
from hashkit_plugins.metrics._ranking_options import RankingOptions, pick, run_evaluate


@attrs.frozen
class PrCurveConfig(RankingOptions):
    pass


@attrs.frozen
class PrecisionRadiusConfig(RankingOptions):
    #: Hamming radius of the retrieved ball
    radius: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    #: a query whose ball is empty counts as precision 0 ("zero", thuml) or is left out ("exclude")
    empty: Literal["zero", "exclude"] = "zero"


class HammingBall(Metric):
    def __init__(self, cfg, which: str):
        self.cfg = cfg
        self.which = which

    def __call__(self, problem: RetrievalProblem) -> dict:
        if problem.kind != "hamming":
            raise ContractError(f"metric {self.which!r} needs Hamming codes, the problem is {problem.kind!r}")
        if self.which == "pr_curve":
            return pick(run_evaluate(problem, self.cfg, metrics=("pr_curve",)), ("pr_curve",))
        res = run_evaluate(problem, self.cfg, metrics=("precision_radius",), radius=self.cfg.radius,
                           empty_radius=self.cfg.empty)
        return pick(res, ("precision@radius", "recall@radius", "empty_radius"))


def build_pr_curve(cfg: PrCurveConfig, ctx: BuildContext) -> HammingBall:
    """Mean precision and recall of the Hamming ball at every radius 0..L (a PR curve)."""
    return HammingBall(cfg, "pr_curve")


def build_precision_radius(cfg: PrecisionRadiusConfig, ctx: BuildContext) -> HammingBall:
    """Precision and recall within Hamming radius r (default 2) and the number of empty balls."""
    return HammingBall(cfg, "precision_radius")


def components(register):
    register("metric", "pr_curve", build_pr_curve, config=PrCurveConfig)
    register("metric", "precision_radius", build_precision_radius, config=PrecisionRadiusConfig)
