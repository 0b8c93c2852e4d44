"""``revisited_map``: mAP and mP@k per revisited Oxford/Paris protocol (Easy, Medium, Hard) with junk.

Reads the ground truth from the problem's labels in hashkit's revisited label encoding (3·Q classes, see
:mod:`hashkit.evaluation.revisited`), which the ``roxford5k`` / ``rparis6k`` / ``oxford5k`` / ``paris6k``
datasets produce. Ranks by cosine similarity (``kind = "cosine"``, real descriptors) or Hamming distance
(``kind = "hamming"``, ±1 codes), ties by database index. Output: ``map_<protocol>``,
``mp@<k>_<protocol>``, ``empty_<protocol>`` (queries without positives, left out of the mean) and
``num_queries``; per-query APs with ``per_query = true``.
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch

from hashkit.errors import ContractError
from hashkit.evaluation.revisited import (
    PROTOCOLS,
    QueryGroundTruth,
    RevisitedGroundTruth,
    encode_targets,
    ground_truth_from_targets,
    revisited_map,
    similarity,
)
from hashkit.interfaces import BuildContext, Metric, RetrievalProblem
from hashkit.testing import ComponentExample, expect


def _protocols(inst, attribute, value):
    bad = [p for p in value if p not in PROTOCOLS]
    if not value or bad:
        raise ValueError(f"'{attribute.name}' must list protocols from {list(PROTOCOLS)}, found {list(value)}")


@attrs.frozen
class RevisitedMapConfig:
    protocols: tuple[str, ...] = attrs.field(default=PROTOCOLS, validator=_protocols)
    #: mP@k cut-offs
    kappas: tuple[int, ...] = (1, 5, 10)
    #: "oxford": the official trapezoidal AP; "standard": mean of precisions at the positives
    ap: Literal["oxford", "standard"] = "oxford"
    #: also return the per-query APs (lists)
    per_query: bool = False


class RevisitedMap(Metric):
    def __init__(self, cfg: RevisitedMapConfig):
        self.cfg = cfg

    def __call__(self, problem: RetrievalProblem) -> dict:
        if problem.query_labels is None or problem.database_labels is None:
            raise ContractError("revisited_map needs query and database labels in the revisited encoding")
        gt = ground_truth_from_targets(problem.query_labels.cpu(), problem.database_labels.cpu())
        scores = similarity(problem.query, problem.database, problem.kind)
        res = revisited_map(scores, gt, self.cfg.protocols, self.cfg.kappas, self.cfg.ap)
        if not self.cfg.per_query:
            res = {k: v for k, v in res.items() if not k.startswith("aps_")}
        res["num_queries"] = len(gt.queries)
        return res


def build_revisited_map(cfg: RevisitedMapConfig, ctx: BuildContext) -> RevisitedMap:
    """mAP and mP@k under the revisited Oxford/Paris Easy / Medium / Hard protocols (junk removed)."""
    return RevisitedMap(cfg)


def _example() -> ComponentExample:
    gt = RevisitedGroundTruth((QueryGroundTruth((0, 1), (2,), (3,)), QueryGroundTruth((4,), (), (0, 5))), 8)
    ql, dl = encode_targets(gt)
    g = torch.Generator().manual_seed(0)
    problem = RetrievalProblem(torch.randn(2, 6, generator=g), torch.randn(8, 6, generator=g), ql, dl, kind="cosine")

    def check(comp, out):
        expect(set(out) >= {"map_easy", "map_medium", "map_hard", "mp@1_medium", "empty_hard"}, f"keys {sorted(out)}")
        expect(out["empty_hard"] == 1 and 0.0 <= out["map_medium"] <= 1.0, f"figures {out}")

    return ComponentExample(inputs=(problem,), check=check)


def components(register):
    register("metric", "revisited_map", build_revisited_map, config=RevisitedMapConfig, example=_example)
