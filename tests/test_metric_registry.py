"""Every metric name goes through the registry: built-in ranking metrics share one streamed engine pass,
third-party metrics named in ``[eval] metrics`` work exactly like ``map``."""

from __future__ import annotations

import types

import attrs
import numpy as np
import pytest
import torch

import hashkit
import training_helpers as th
from hashkit.errors import ContractError, RecipeError
from hashkit.evaluation import api as engine
from hashkit.evaluation.scoring import metric_set, score
from hashkit.interfaces import Metric, RetrievalProblem
from hashkit.plugin_loader import add_plugin, remove_plugin
from hashkit.recipe import load_recipe


def random_problem(seed=0, q=6, n=40, bits=12, classes=3, kind="hamming"):
    g = torch.Generator().manual_seed(seed)
    codes = lambda m: torch.randint(0, 2, (m, bits), generator=g).float() * 2 - 1  # noqa: E731
    labels = lambda m: torch.nn.functional.one_hot(  # noqa: E731
        torch.randint(0, classes, (m,), generator=g), classes).float()
    return RetrievalProblem(codes(q), codes(n), labels(q), labels(n), kind=kind)


def eval_metrics(*entries, **section):
    recipe = load_recipe(th.tiny_recipe(eval={"metrics": list(entries), **section}))
    return metric_set(recipe.eval.metrics, topk=recipe.eval.topk, drop_last_item=recipe.eval.drop_last_item)


def test_builtin_ranking_metrics_share_one_engine_pass_and_equal_the_engine(monkeypatch):
    calls = []
    real = engine.evaluate
    monkeypatch.setattr(engine, "evaluate", lambda *a, **k: calls.append(k["metrics"]) or real(*a, **k))
    problem = random_problem()
    metrics = eval_metrics("map@5", {"name": "precision@k", "k": [3]}, "recall@3", "pr_curve")
    assert [n for n, _ in metrics] == ["map", "map@k", "precision@k", "recall@k", "pr_curve"]
    got = score(problem, metrics)
    assert len(calls) == 1 and set(calls[0]) == {"map@k", "precision@k", "recall@k", "pr_curve"}
    direct = real(problem, metrics=("map@k", "precision@k", "recall@k", "pr_curve"), topk=(3, 5))
    for key in ("map", "map_tie_aware", "map@5", "precision@3", "precision@3_tie_aware", "recall@3",
                "num_queries", "no_relevant_queries", "code_length", "kind"):
        assert got[key] == direct[key], key
    assert got["pr_curve"] == direct["pr_curve"]
    assert "map@3" not in got and "precision@5" not in got  # each metric reports its own cut-offs only


def test_different_options_are_separate_passes_and_clashes_are_errors(monkeypatch):
    problem = random_problem(1)
    metrics = eval_metrics("map", {"name": "map@k", "k": [10], "norm": "R"}, drop_last_item=True)
    calls = []
    real = engine.evaluate
    monkeypatch.setattr(engine, "evaluate", lambda *a, **k: calls.append(k) or real(*a, **k))
    got = score(problem, metrics)
    assert len(calls) == 2 and all(c["drop_last_item"] for c in calls)  # eval.drop_last_item reaches both
    assert got["map"] == real(problem, drop_last_item=True)["map"] and got["num_database"] == 39
    clash = eval_metrics("map", {"name": "map", "zero_relevant": "exclude"})
    lonely = attrs.evolve(problem, query_labels=torch.cat([problem.query_labels, torch.zeros(6, 1)], 1),
                          database_labels=torch.cat([problem.database_labels, torch.zeros(40, 1)], 1))
    lonely.query_labels[0] = torch.tensor([0.0, 0.0, 0.0, 1.0])  # no relevant item: the two rules differ
    with pytest.raises(ContractError, match="metrics 'map' and 'map' both report 'map'"):
        score(lonely, clash)


def test_hamming_ball_metrics_are_skipped_for_descriptors_and_refused_alone():
    problem = random_problem(3, kind="cosine")
    metrics = eval_metrics("map", "pr_curve", "cosine_map")
    got = score(problem, metrics)
    assert "pr_curve" not in got and got["map"] == got["cosine_map"]  # cosine problem: both rank by cosine
    with pytest.raises(ContractError, match="needs Hamming codes"):
        dict(metrics)["pr_curve"](problem)


@pytest.mark.parametrize("entry, fragments", [
    ("mapp", ["eval.metrics[0].name", "unknown metric 'mapp'", "closest: map"]),
    ("precison@10", ["eval.metrics[0].name", "unknown metric 'precison@10'"]),
    ({"name": "map@10", "k": [5]}, ["eval.metrics[0].k", "gives k in its name"]),
    ({"name": "map@k", "norm": "max"}, ["eval.metrics[0].norm", "found str 'max'"]),
])
def test_metric_entries_are_validated_when_the_recipe_loads(entry, fragments):
    with pytest.raises(RecipeError) as info:
        load_recipe(th.tiny_recipe(eval={"metrics": [entry]}))
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


# ------------------------------------------------------------------------------ a third-party metric
@attrs.frozen
class OverlapConfig:
    top: int = 3


class LabelOverlap(Metric):
    """Mean share of the query's labels found among its ``top`` nearest database items (Hamming only)."""

    kinds = ("hamming",)

    def __init__(self, cfg):
        self.top = cfg.top

    def __call__(self, problem):
        dist = torch.cdist(problem.query.double(), problem.database.double(), p=1)
        order = torch.sort(dist, dim=1, stable=True).indices[:, : self.top]
        found = (problem.database_labels[order].amax(dim=1) * problem.query_labels).sum(1)
        return {f"overlap@{self.top}": float((found / problem.query_labels.sum(1)).mean())}


@pytest.fixture
def overlap_plugin():
    mod = types.ModuleType("overlap_plugin")
    mod.hashkit_register = hashkit.hookimpl(lambda register: register(
        "metric", "label_overlap", lambda cfg, ctx: LabelOverlap(cfg), config=OverlapConfig))
    add_plugin(mod, "overlap_plugin")
    th.register_test_plugin()
    yield
    remove_plugin("overlap_plugin")


def test_third_party_metric_from_a_recipe_reaches_the_report(overlap_plugin, tmp_path):
    from hashkit.training import train
    from hashkit.training.checkpoint import load_checkpoint

    recipe = th.tiny_recipe(eval={"database": ["encoded"], "metrics": ["map", {"name": "label_overlap", "top": 2}],
                                  "descriptor": True})
    report = train(recipe, tmp_path / "run")
    encoded = report["results"]["8"]["last"]["encoded"]
    codes, _ = load_checkpoint(tmp_path / "run" / "L8" / "codes.safetensors")
    q, d = codes["last.query"].numpy(), codes["last.database_encoded"].numpy()
    ql, dl = codes["last.query_labels"].numpy(), codes["last.database_encoded_labels"].numpy()
    expected = []
    for i in range(len(q)):  # literal: Hamming distances, stable order, top 2, share of the query's labels found
        dist = [(int((q[i] != d[j]).sum()), j) for j in range(len(d))]
        top = [j for _, j in sorted(dist)[:2]]
        found = np.maximum.reduce([dl[j] for j in top]) * ql[i]
        expected.append(found.sum() / ql[i].sum())
    assert encoded["overlap@2"] == pytest.approx(float(np.mean(expected)), abs=1e-12)
    assert 0.0 < encoded["map"] <= 1.0
    assert "overlap@2" not in report["results"]["8"]["last"]["descriptor"]  # Hamming-only: skipped
    with pytest.raises(RecipeError, match="unknown metric 'label_overlapp'"):
        load_recipe(th.tiny_recipe(eval={"metrics": ["label_overlapp"]}))
