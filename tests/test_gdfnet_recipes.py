"""GDF-Net recipes: defaults, full-size build, and training of the demo and the mixed recipe from their files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hashkit.assemble import build, build_model
from hashkit.recipe.load import load_recipe

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
DATASETS = {"cub200": "cub200", "stanford_dogs": "stanford_dogs", "stanford_cars": "stanford_cars"}


def test_gdfnet_recipe_has_the_spec_defaults():
    r = load_recipe(RECIPES / "gdfnet.toml")
    assert r.backbone.name == "inception_v3" and r.backbone.config.until == "Mixed_6e" and r.model.tap == "Mixed_6e"
    assert [a.name for a in r.attention] == ["attention_parts"] and r.attention[0].config.num_maps == 32
    inner = r.aggregation.config.inner  # WS-DAN crop/drop views around the kNN-graph aggregation
    assert r.aggregation.name == "wsdan_views" and inner.name == "knn_graph"
    assert (inner.config.k, inner.config.layers, inner.config.dynamic, inner.config.node_pool) == (3, 2, True, "max")
    assert {ref.name: ref.config for ref in r.losses}["cross_entropy"].views == ("crop", "drop")
    head = r.hash_head.config
    assert (head.scale, head.scale_at, head.classifier_on, head.classifier_bias) == (100.0, "input", "logits", False)
    weights = {ref.name: ref.weight for ref in r.losses}
    assert weights == {"cross_entropy": 1.0, "center_loss": 1.0, "cauchy_quantization": 0.1, "bit_balance": 0.01}
    assert r.data.train_transform.crop == 448 and r.data.eval_transform.crop == 448 and r.data.batch_size == 12
    assert (r.optimizer.name, r.optimizer.lr, r.optimizer.momentum, r.optimizer.weight_decay) == ("sgd", 1e-3, 0.9, 1e-5)
    assert (r.schedule.name, r.schedule.step_size, r.schedule.gamma) == ("step", 2, 0.9)
    assert r.protocol.name == "pointwise" and r.protocol.config.epochs == 160
    assert "inferred" in r.provenance


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_per_dataset_recipes(dataset):
    r = load_recipe(RECIPES / f"gdfnet-{dataset}.toml")
    assert r.code_lengths == (12, 24, 32, 48)
    assert r.dataset.name == DATASETS[dataset]
    assert r.attention[0].config.num_maps == 32 and r.aggregation.config.inner.config.k == 3


@pytest.mark.slow
def test_gdfnet_full_size_model_builds_and_runs_at_448():
    r = load_recipe(RECIPES / "gdfnet.toml", {"model.backbone.weights": "none"})
    model = build_model(r, 48, num_classes=200).eval()
    assert model.aggregation.descriptor_dims == {"bap": 32 * 768, "graph": 2 * 768 * 32}
    with torch.no_grad():
        out = model(torch.randn(1, 3, 448, 448))
    assert out.maps.shape == (1, 32, 26, 26)
    assert out.descriptor.shape == (1, 3 * 32 * 768) and out.codes.shape == (1, 48)
    assert out.class_logits.shape == (1, 200)


@pytest.mark.slow
def test_mixed_recipe_builds_and_trains_from_the_file(tmp_path):
    from hashkit.training import train

    r = load_recipe(RECIPES / "mix-sem-knn-cauchy.toml")
    built = build(r)
    assert [a.name for a in r.attention] == ["sem"] and r.aggregation.name == "knn_graph"
    assert built.model.aggregation.num_maps == 3
    report = train(RECIPES / "mix-sem-knn-cauchy.toml", tmp_path / "run", overrides={
        "data.dataset.train_per_class": 20, "data.dataset.query_per_class": 5, "protocol.epochs": 2})
    result = report["results"]["16"]["selected"]["encoded"]
    assert 0.0 < result["map"] <= 1.0
    steps = [json.loads(line) for line in (tmp_path / "run" / "L16" / "metrics.jsonl").read_text().splitlines()]
    losses = [s["loss"] for s in steps if s.get("event") == "step"]
    assert losses and all(torch.isfinite(torch.tensor(losses)))


@pytest.mark.slow
def test_demo_trains_well_above_the_untrained_model(tmp_path):
    from hashkit.training import train
    from hashkit.training.evaluate import evaluate_model
    from hashkit.training.seeding import derive_seed, seed_globals

    path = RECIPES / "gdfnet-demo.toml"
    recipe = load_recipe(path)
    seed_globals(derive_seed(recipe.seed, 16, "init"))
    untrained = build(recipe, 16)
    untrained.model.eval()
    before = evaluate_model(untrained.model, recipe, query=untrained.data.split("query"),
                            database=untrained.data.split("database"), learned=None,
                            device=torch.device("cpu")).scores["encoded"]["map"]
    report = train(path, tmp_path / "run")
    after = report["results"]["16"]["selected"]["encoded"]["map"]
    assert after > before + 0.15, (before, after)
