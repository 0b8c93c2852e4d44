"""Each ADSH-family demo recipe trains on the built-in demo data and gains at least 0.15 mAP@all on the encoded
database over its untrained model (the model ``hashkit train`` starts from, scored like a finished run, as
``hashkit baseline`` does). One code length each (12 bits)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hashkit.recipe import load_recipe
from hashkit.training import train
from hashkit.training.baseline import untrained_report

pytestmark = pytest.mark.slow

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
QUIET = ["train.progress=false"]


@pytest.mark.parametrize("method", ["a2net", "exchnet", "agmh", "dahnet"])
def test_demo_gains_over_untrained(method, tmp_path):
    path = RECIPES / f"{method}-demo.toml"
    before = untrained_report(load_recipe(path, QUIET), [12])["results"]["12"]["last"]
    report = train(path, tmp_path / "run", overrides=QUIET, code_lengths=[12])
    after = report["results"]["12"]["last"]
    assert after["encoded"]["map"] >= before["encoded"]["map"] + 0.15, (before["encoded"], after["encoded"])
    assert after["learned"]["map"] > before["learned"]["map"]
