"""Each ADSH-family demo recipe trains on the built-in demo data and gains at least 0.15 mAP@all on the encoded
database over its untrained model (the model ``hashkit train`` starts from, scored like a finished run, as
``tools/untrained_baseline.py`` does). One code length each (12 bits)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hashkit.assemble import build
from hashkit.recipe import load_recipe
from hashkit.training import train
from hashkit.training.evaluate import evaluate_model
from hashkit.training.seeding import derive_seed, generator, seed_globals

pytestmark = pytest.mark.slow

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
QUIET = ["train.progress=false"]


def untrained_scores(recipe_path: Path, length: int) -> dict:
    recipe = load_recipe(recipe_path, QUIET)
    seed_globals(derive_seed(recipe.seed, length, "init"))
    built = build(recipe, length)
    train_split = built.data.split("train")
    built.protocol.setup(train_split.targets.float(), generator(recipe.seed, length, "setup"))
    learned = (built.protocol.database_codes(), train_split.targets.float())
    return evaluate_model(built.model.eval(), recipe, query=built.data.split("query"),
                          database=built.data.split("database"), learned=learned, device=torch.device("cpu")).scores


@pytest.mark.parametrize("method", ["a2net", "exchnet", "agmh", "dahnet"])
def test_demo_gains_over_untrained(method, tmp_path):
    path = RECIPES / f"{method}-demo.toml"
    before = untrained_scores(path, 12)
    report = train(path, tmp_path / "run", overrides=QUIET, code_lengths=[12])
    after = report["results"]["12"]["last"]
    assert after["encoded"]["map"] >= before["encoded"]["map"] + 0.15, (before["encoded"], after["encoded"])
    assert after["learned"]["map"] > before["learned"]["map"]
