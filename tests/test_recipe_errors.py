"""Malformed recipes: each gets one line naming the file, the key, what was expected and what was found,
and the CLI exits with status 2 (no traceback)."""

from __future__ import annotations

import pytest

from hashkit.cli.main import main
from hashkit.errors import RecipeError
from hashkit.recipe import load_recipe

BASE = """
name = "t"
code_lengths = [8]
[model.backbone]
name = "tiny_cnn"
width = 4
[model.aggregation]
name = "gap"
[model.hash_head]
name = "linear"
[[losses]]
name = "cross_entropy"
[data.dataset]
name = "demo"
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def cli_error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    return code, lines


CASES = {
    "unknown_component": (BASE.replace('name = "gap"', 'name = "gapp"'),
                          ["model.aggregation.name", "unknown aggregation 'gapp'", "closest: gap"]),
    "misspelled_key": (BASE.replace("width = 4", "widht = 4"),
                       ["model.backbone.widht", "unknown key", "closest: 'width'"]),
    "wrong_type": (BASE.replace("width = 4", 'width = "four"'),
                   ["model.backbone.width", "expected int", "found str 'four'"]),
    "validator": (BASE.replace("width = 4", "width = 0"), ["model.backbone.width", "must be >= 1"]),
    "bad_extends_path": ('extends = "nowhere.toml"\n' + BASE, ["extends", "does not exist", "nowhere.toml"]),
    "unknown_top_level": ("seeed = 3\n" + BASE, ["seeed", "unknown key", "closest: 'seed'"]),
    "bad_literal": (BASE + "\n[train]\namp = \"bf17\"\n", ["train.amp", "'bf16'", "found str 'bf17'"]),
    "invalid_toml": (BASE + "\n[model\n", ["invalid TOML"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_recipe_gives_one_line_and_status_2(case, tmp_path, capsys):
    text, fragments = CASES[case]
    path = write(tmp_path, f"{case}.toml", text)
    code, lines = cli_error(capsys, ["recipe", "validate", str(path)])
    assert code == 2
    assert len(lines) == 1, lines
    assert str(path) in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    with pytest.raises(RecipeError):
        load_recipe(path)


def test_cyclic_extends(tmp_path, capsys):
    a = write(tmp_path, "a.toml", 'extends = "b.toml"\n' + BASE)
    write(tmp_path, "b.toml", 'extends = "a.toml"\nseed = 1\n')
    code, lines = cli_error(capsys, ["recipe", "validate", str(a)])
    assert code == 2 and len(lines) == 1
    assert "cyclic extends" in lines[0] and "a.toml" in lines[0] and "b.toml" in lines[0]


@pytest.mark.parametrize("override, fragments", [
    ("model.backbone.width", ["bad --set", "expected path.to.key=value"]),
    ("model..width=3", ["bad --set", "not a dotted key"]),
    ("model.backbone.width=abc", ["model.backbone.width", "expected int", "found str 'abc'"]),
    ("model.backbone.depth=3", ["model.backbone.depth", "unknown key"]),
    ("losses[3].weight=2", ["losses", "has 1 entries"]),
])
def test_bad_set_override(override, fragments, tmp_path, capsys):
    path = write(tmp_path, "ok.toml", BASE)
    code, lines = cli_error(capsys, ["recipe", "validate", str(path), "--set", override])
    assert code == 2 and len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_errors_name_the_file_that_defined_the_key(tmp_path):
    write(tmp_path, "parent.toml", BASE.replace("width = 4", "widht = 4"))
    child = write(tmp_path, "child.toml", 'extends = "parent.toml"\nseed = 2\n')
    with pytest.raises(RecipeError) as info:
        load_recipe(child)
    assert "parent.toml" in str(info.value) and "model.backbone.widht" in str(info.value)


def test_extends_deep_merges_and_set_coerces_types(tmp_path):
    write(tmp_path, "parent.toml", BASE)
    child = write(tmp_path, "child.toml", 'extends = "parent.toml"\n[model.backbone]\nblocks = 2\n')
    recipe = load_recipe(child, ["model.backbone.width=8", "optimizer.lr=1", "name=123", "code_lengths=[12, 24]"])
    assert recipe.backbone.config.width == 8 and recipe.backbone.config.blocks == 2
    assert recipe.optimizer.lr == 1.0 and isinstance(recipe.optimizer.lr, float)
    assert recipe.name == "123"
    assert recipe.code_lengths == (12, 24)
    assert recipe.aggregation.name == "gap"  # inherited


def test_python_overrides_mapping(tmp_path):
    path = write(tmp_path, "r.toml", BASE)
    recipe = load_recipe(path, {"model.backbone.width": 16, "train.amp": "bf16"})
    assert recipe.backbone.config.width == 16 and recipe.train.amp == "bf16"


def test_extends_replaces_a_component_table_whose_name_changes(tmp_path):
    write(tmp_path, "parent.toml", BASE.replace('name = "gap"', 'name = "gap"\nnormalize = true'))
    child = write(tmp_path, "child.toml", 'extends = "parent.toml"\n[model.aggregation]\nname = "gmp"\n')
    recipe = load_recipe(child)
    assert recipe.aggregation.name == "gmp" and recipe.aggregation.config.normalize is False
    same = write(tmp_path, "same.toml", 'extends = "parent.toml"\n[model.backbone]\nblocks = 2\n')
    assert load_recipe(same).backbone.config.width == 4  # same component: merged key by key


def test_nested_component_tables_are_validated_when_the_recipe_loads(tmp_path, capsys):
    """A component parameter that names another component (wsdan_views' inner aggregation) is checked too."""
    path = write(tmp_path, "ok.toml", BASE.replace('[model.aggregation]\nname = "gap"', ""))
    base = ['[model.aggregation]\nname = "wsdan_views"\ninner = {name = "knn_graph", kk = 3}\n',
            '[model.aggregation]\nname = "wsdan_views"\ninner = {name = "knn_grap", k = 3}\n']
    expected = [["model.aggregation.inner.kk", "unknown key", "closest: 'k'"],
                ["model.aggregation.inner.name", "unknown aggregation 'knn_grap'", "closest: knn_graph"]]
    for i, (table, fragments) in enumerate(zip(base, expected)):
        bad = write(tmp_path, f"nested{i}.toml", path.read_text() + table)
        code, lines = cli_error(capsys, ["recipe", "validate", str(bad)])
        assert code == 2 and len(lines) == 1 and str(bad) in lines[0]
        for fragment in fragments:
            assert fragment in lines[0], (fragment, lines[0])
    code, lines = cli_error(capsys, ["recipe", "validate", str(path), "--set",
                                     'model.aggregation={name="wsdan_views", inner={name="gap", normalise=true}}'])
    assert code == 2 and "--set: model.aggregation.inner.normalise" in lines[0]
