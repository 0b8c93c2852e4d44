"""Recipe inputs that used to crash or hang, relative paths, and values that are accepted but clamped."""

from __future__ import annotations

import datetime
import os
import re
import tomllib
from pathlib import Path

import pytest

import training_helpers as th
from hashkit.errors import RecipeError
from hashkit.recipe import load_recipe
from hashkit.recipe.toml_writer import dumps_toml

TINY = 'code_lengths = [8]\n[model.backbone]\nname = "tiny_cnn"\n[model.aggregation]\nname = "gap"\n' \
       '[model.hash_head]\nname = "linear"\n'


@pytest.mark.parametrize("override, message", [
    ("data=5", "expected a [data] table, found int 5"),
    ("train=[1]", "expected a [train] table"),
    ("model.backbone=5", "expected a backbone table with a 'name' key"),
    ("data.dataset=5", "expected a dataset table with a 'name' key"),
])
def test_a_non_table_where_a_table_belongs_is_one_error(tmp_path, override, message):
    (tmp_path / "r.toml").write_text(TINY)
    with pytest.raises(RecipeError, match=re.escape(message)):
        load_recipe(tmp_path / "r.toml", [override])


def test_nesting_is_bounded_in_files_and_in_set_values(tmp_path):
    from hashkit.recipe.toml_loader import MAX_NESTING

    (tmp_path / "r.toml").write_text(TINY)
    deep = "[" * 1000 + "]" * 1000
    with pytest.raises(RecipeError, match=f"more than {MAX_NESTING} levels"):
        load_recipe(tmp_path / "r.toml", [f"provenance.x={deep}"])
    (tmp_path / "deep.toml").write_text(TINY + f"[provenance]\nx = {deep}\n")
    with pytest.raises(RecipeError, match=f"more than {MAX_NESTING} levels"):
        load_recipe(tmp_path / "deep.toml")
    ok = "[" * 10 + "]" * 10
    assert load_recipe(tmp_path / "r.toml", [f"provenance.x={ok}"]).provenance["x"] == eval(ok)


def test_dates_in_provenance_are_written_back(tmp_path):
    from hashkit.training import train

    recipe = tmp_path / "r.toml"
    recipe.write_text(dumps_toml(th.tiny_recipe(protocol={"name": "pointwise", "epochs": 1}))
                      + "\n[provenance]\nretrieved = 2024-05-27\nrun_at = 2024-05-27T07:32:00Z\nat = 07:32:00\n")
    run = tmp_path / "run"
    train(recipe, run)
    saved = tomllib.loads((run / "recipe.toml").read_text())["provenance"]
    assert saved == {"retrieved": datetime.date(2024, 5, 27), "at": datetime.time(7, 32),
                     "run_at": datetime.datetime(2024, 5, 27, 7, 32, tzinfo=datetime.timezone.utc)}


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/stdin", "DIR"])
def test_extends_only_reads_regular_files(tmp_path, target):
    if target.startswith("/dev/") and not os.path.exists(target):
        pytest.skip(f"{target} does not exist here")
    target = str(tmp_path) if target == "DIR" else target
    (tmp_path / "r.toml").write_text(f'extends = "{target}"\n' + TINY)
    with pytest.raises(RecipeError, match="not a regular file"):
        load_recipe(tmp_path / "r.toml")


def test_recipe_files_have_a_size_limit(tmp_path):
    from hashkit.recipe.toml_loader import MAX_RECIPE_BYTES

    big = tmp_path / "big.toml"
    big.write_text(TINY + "[provenance]\nnote = \"" + "x" * MAX_RECIPE_BYTES + "\"\n")
    with pytest.raises(RecipeError, match="1,048,576-byte limit"):
        load_recipe(big)
    (tmp_path / "child.toml").write_text('extends = "big.toml"\n')
    with pytest.raises(RecipeError, match="big.toml.*1,048,576-byte limit"):
        load_recipe(tmp_path / "child.toml")


def test_relative_roots_are_relative_to_the_recipe_file(tmp_path, monkeypatch):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "data" / "birds").mkdir(parents=True)
    (tmp_path / "recipes" / "r.toml").write_text(TINY + '[data]\ndataset = { name = "image_folder", root = "../data/birds" }\n')
    monkeypatch.chdir(tmp_path / "data")  # anywhere else
    recipe = load_recipe(tmp_path / "recipes" / "r.toml")
    assert Path(recipe.dataset.config.root) == (tmp_path / "recipes" / "../data/birds")
    assert Path(recipe.raw["data"]["dataset"]["root"]).is_absolute()  # what a run directory saves
    # a child recipe inherits the root as written in the parent, relative to the parent
    (tmp_path / "child").mkdir()
    (tmp_path / "child" / "c.toml").write_text('extends = "../recipes/r.toml"\n')
    assert load_recipe(tmp_path / "child" / "c.toml").dataset.config.root == recipe.dataset.config.root
    # --set is relative to the working directory
    over = load_recipe(tmp_path / "recipes" / "r.toml", ["data.dataset.root=birds"])
    assert Path(over.dataset.config.root) == tmp_path / "data" / "birds"
    # errors name the absolute path
    from hashkit.assemble import build_dataset
    from hashkit.errors import DataError

    with pytest.raises(DataError, match=str(tmp_path / "data" / "nope")):
        build_dataset(load_recipe(tmp_path / "recipes" / "r.toml", ["data.dataset.root=nope"]))


def test_clamped_values_warn_in_validate_and_in_the_run_log(tmp_path, capsys):
    import json

    from hashkit.cli.main import main
    from hashkit.training import train

    recipe = tmp_path / "r.toml"
    recipe.write_text(dumps_toml(th.adsh_recipe(
        protocol={"name": "adsh", "rounds": 2, "epochs": 1, "num_samples": 500, "gamma": 200.0},
        schedule={"name": "multistep", "unit": "round", "milestones": [1, 30]})))
    assert main(["recipe", "validate", str(recipe)]) == 0
    err = capsys.readouterr().err
    assert "protocol.num_samples = 500 is more than the 40 training items; each round samples all 40" in err
    assert "schedule.milestones [30] lie beyond the end of training (2 rounds" in err
    train(recipe, tmp_path / "run")
    assert "num_samples = 500" in capsys.readouterr().err
    log = [json.loads(line) for line in (tmp_path / "run" / "L8" / "metrics.jsonl").read_text().splitlines()]
    assert [e["event"] for e in log[:2]] == ["warning", "warning"] and "milestones [30]" in log[1]["message"]
    assert main(["recipe", "validate", str(recipe), "--set", "protocol.num_samples=20",
                 "--set", "schedule.milestones=[1]"]) == 0
    assert "warning" not in capsys.readouterr().err
