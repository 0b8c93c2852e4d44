"""Run directories saved before nested components (``[model.channel_interaction]`` in their recipe.toml) still
load: ``eval``, ``encode``, ``gallery`` and ``--resume`` move the table into ``refine_branches``'
``interaction`` with a one-line warning; what cannot be moved safely is a one-line error saying what to edit."""

from __future__ import annotations

import shutil
import tomllib

import pytest
import torch

from hashkit.cli.main import main
from hashkit.errors import RecipeError, RecipeUpgradeWarning
from hashkit.recipe import load_recipe
from hashkit.recipe.toml_writer import dumps_toml


def _old_run(run, tmp_path, aggregation: str | None = None):
    """A copy of ``run`` whose recipe.toml is written the way hashkit wrote it before nested components."""
    old = tmp_path / "old-run"
    shutil.copytree(run, old)
    data = tomllib.loads((old / "recipe.toml").read_text())
    model = data["model"]
    model["channel_interaction"] = model["aggregation"].pop("interaction")
    if aggregation:
        model["aggregation"]["name"] = aggregation
    (old / "recipe.toml").write_text(dumps_toml(data))
    return old


def test_an_old_run_loads_as_the_same_model_with_a_one_line_warning(semicon_tiny_run, tmp_path, capsys):
    from hashkit.runs import load_run

    old = _old_run(semicon_tiny_run, tmp_path)
    with pytest.warns(RecipeUpgradeWarning, match=r"\[model\.channel_interaction\]"):
        loaded = load_run(old, 12)
    current = load_run(semicon_tiny_run, 12)
    assert loaded.recipe.aggregation == current.recipe.aggregation  # interaction nested, parameters kept
    assert loaded.recipe.aggregation.config.interaction.name == "icon"
    want = current.model.state_dict()
    got = loaded.model.state_dict()
    assert list(got) == list(want) and all(torch.equal(got[k], want[k]) for k in want)

    capsys.readouterr()
    assert main(["eval", str(old), "--code-length", "12", "--json"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hashkit: warning: ") and "interaction" in err[0], err

    with pytest.raises(RecipeError, match="no model-level channel interaction"):  # a user's file: current schema
        load_recipe(old / "recipe.toml")


def test_an_old_run_that_cannot_be_upgraded_safely_is_one_line_saying_what_to_edit(semicon_tiny_run, tmp_path,
                                                                                      capsys):
    old = _old_run(semicon_tiny_run, tmp_path, aggregation="gap")
    assert main(["eval", str(old), "--code-length", "12"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    for fragment in (str(old / "recipe.toml"), "model.channel_interaction", "older hashkit", "'gap'",
                     "move the table", "delete it"):
        assert fragment in err[0], (fragment, err[0])


def test_upgrade_takes_an_aggregation_given_by_name_and_refuses_a_missing_one():
    from hashkit.recipe.upgrade import upgrade_saved_recipe

    data = {"model": {"aggregation": "refine_branches", "channel_interaction": {"name": "icon"}}}
    assert len(upgrade_saved_recipe(data, "recipe.toml")) == 1
    assert data["model"] == {"aggregation": {"name": "refine_branches", "interaction": {"name": "icon"}}}
    with pytest.raises(RecipeError, match="model.channel_interaction.*cannot be moved"):
        upgrade_saved_recipe({"model": {"channel_interaction": {"name": "icon"}}}, "recipe.toml")
