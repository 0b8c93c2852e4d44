"""FDH-MFE recipes: they load, build, and give the proxies their own learning rate through the trainer."""

from __future__ import annotations

import pytest
import torch
import training_helpers as th

import hashkit
from hashkit.assemble import build_losses, build_model, build_ref
from hashkit.interfaces import BuildContext

RECIPES = ["fdhmfe", "fdhmfe-cub200", "fdhmfe-aircraft", "fdhmfe-stanford_dogs", "fdhmfe-nabirds", "fdhmfe-demo"]
CLASSES = {"fdhmfe-cub200": 200, "fdhmfe-aircraft": 100, "fdhmfe-stanford_dogs": 120, "fdhmfe-nabirds": 555}


@pytest.mark.parametrize("name", RECIPES)
def test_recipes_load(name):
    r = hashkit.load_recipe(f"recipes/{name}.toml")
    assert r.aggregation.name == "gnn_multilevel" and [a.name for a in r.attention] == ["background_suppression"]
    assert [loss.name for loss in r.losses] == ["hhf", "triplet"]
    assert r.data.sampler.name == "pk"
    if name != "fdhmfe-demo":
        assert r.code_lengths == (12, 24, 32, 48) and r.model.taps == ("layer2", "layer3", "layer4")


#: τ at 24 bits = 1 - 2 d / 24: d = 8 for 200 classes (code table), 10 for 100 / 120 (code table), 8 for 555
#: (extended Golay subcode)
TAU_24 = {"fdhmfe-cub200": 1 / 3, "fdhmfe-aircraft": 1 / 6, "fdhmfe-stanford_dogs": 1 / 6, "fdhmfe-nabirds": 1 / 3}


@pytest.mark.parametrize("name", list(CLASSES))
def test_hhf_tau_per_dataset(name):
    r = hashkit.load_recipe(f"recipes/{name}.toml", {"model.backbone.weights": "none"})
    model = build_model(r, 24, CLASSES[name])
    losses = build_losses(r, model, build_ref(r.protocol, BuildContext()), 24, CLASSES[name])
    assert losses.losses[0].tau == pytest.approx(TAU_24[name])


def test_resnet50_model_shapes_and_proxy_learning_rate():
    from hashkit.training.optim import param_groups

    r = hashkit.load_recipe("recipes/fdhmfe-cub200.toml", {"model.backbone.weights": "none"})
    model = build_model(r, 12, 200).eval()
    losses = build_losses(r, model, build_ref(r.protocol, BuildContext()), 12, 200)
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert out.codes.shape == (1, 12) and out.extras["nodes"].shape == (1, 21, 512)
    # the trainer's naming: model parameters, then "losses." + the LossSet's names
    named = [*model.named_parameters(), *(("losses." + n, p) for n, p in losses.named_parameters())]
    groups = {g["name"]: g for g in param_groups(named, r.optimizer)}
    assert groups["proxies"]["lr"] == pytest.approx(1e-2)
    assert [p.shape for p in groups["proxies"]["params"]] == [(200, 12)]
    assert groups["aggregation."]["lr"] == pytest.approx(1e-3) and groups["default"]["lr"] == pytest.approx(1e-4)


@pytest.mark.slow
def test_demo_trains_clearly_above_the_untrained_model(tmp_path):
    """fdhmfe-demo for 4 of its 8 epochs: tie-aware mAP at least 0.15 above the same model at init."""
    from hashkit.training import train

    recipe = hashkit.load_recipe("recipes/fdhmfe-demo.toml", {"protocol.epochs": 4})
    before = th.untrained_scores(recipe, 12)["encoded"]
    report = train(recipe, tmp_path / "run")
    after = report["results"]["12"]["last"]["encoded"]
    assert after["map_tie_aware"] > before["map_tie_aware"] + 0.15, (before, after)
    assert after["map"] > before["map"] + 0.1
