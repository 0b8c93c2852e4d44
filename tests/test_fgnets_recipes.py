"""The FISH, CHN, DPAH and DCDH recipes: every one loads and cites its sources; every demo recipe trains well
above its untrained model (the baseline that ``hashkit baseline`` computes)."""

from __future__ import annotations

from pathlib import Path

import pytest

import hashkit

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
METHODS = ("fish", "chn", "dpah", "dcdh")
DATASETS = ("cub200", "aircraft", "food101", "nabirds", "stanford_dogs", "vegfru")


@pytest.mark.parametrize("method", METHODS)
def test_recipes_load_and_cite_public_sources(method):
    files = [RECIPES / f"{method}.toml", RECIPES / f"{method}-demo.toml",
             *(RECIPES / f"{method}-{d}.toml" for d in DATASETS)]
    files += [f for f in (RECIPES / f"{method}-official.toml",) if f.exists()]
    for path in files:
        recipe = hashkit.load_recipe(path)
        text = path.read_text()
        assert recipe.provenance and "shared/" not in text and "specs/" not in text, path.name
        if not path.stem.endswith("demo"):
            assert "aassxun/DSH_Analysis @ 44271bc" in str(recipe.provenance), path.name
    full = hashkit.load_recipe(RECIPES / f"{method}.toml")
    assert full.optimizer.name == "sgd" and full.data.batch_size == 16 and full.protocol.config.rounds == 40
    assert any(k.startswith("parameters_48_bits") for k in full.provenance)
    # DSH_Analysis evaluates at iterations 5, 10, ..., 35, then every one of 36..40
    assert full.train.eval_rounds == (*range(5, 36, 5), *range(36, 41))
    nabirds = hashkit.load_recipe(RECIPES / f"{method}-nabirds.toml")
    assert nabirds.protocol.config.num_samples == 4000 and nabirds.dataset.name == "nabirds"


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_demo_trains_well_above_the_untrained_model(method, tmp_path):
    """The demo recipe for half its rounds: encoded mAP (and tie-aware mAP) at least 0.15 above the untrained
    model; for the proxy-code methods the label-derived database too."""
    from hashkit.training import train
    from hashkit.training.baseline import untrained_report

    overrides = {"protocol.rounds": 2, "schedule.milestones": [2], "train.progress": False}
    recipe = hashkit.load_recipe(RECIPES / f"{method}-demo.toml", overrides)
    before = untrained_report(recipe, [12])["results"]["12"]["last"]
    after = train(recipe, tmp_path / "run")["results"]["12"]["last"]
    for kind in before:
        assert after[kind]["map"] > before[kind]["map"] + 0.15, (kind, before[kind], after[kind])
        assert after[kind]["map_tie_aware"] > before[kind]["map_tie_aware"] + 0.15, (kind, before, after)
