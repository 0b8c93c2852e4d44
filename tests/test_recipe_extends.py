"""``extends`` and arrays of component tables: a child's entry merges over the parent's entry at the same
position while it keeps its ``name``; a new ``name`` replaces the entry; the child's array sets the length."""

from __future__ import annotations

import pytest

from hashkit.errors import RecipeError
from hashkit.recipe import load_recipe
from hashkit.recipe.toml_loader import deep_merge

PARENT = """
code_lengths = [12, 24]
[model]
tap = "stage3"
[model.backbone]
name = "tiny_cnn"
width = 16
until = "stage3"
[[model.attention]]
name = "sem"
alpha = 0.15
sigma = "image"
[model.aggregation]
name = "gap"
[model.hash_head]
name = "linear"
[[losses]]
name = "adsh"
gamma = 200.0
[[losses]]
name = "quantization"
weight = 0.5
[optimizer]
param_groups = [{ match = "hash_head", lr_mult = 10.0 }]
"""


@pytest.fixture
def parent(tmp_path):
    (tmp_path / "parent.toml").write_text(PARENT)
    return tmp_path


def child(folder, text, name="child.toml"):
    path = folder / name
    path.write_text('extends = "parent.toml"\n' + text)
    return load_recipe(path)


def test_one_key_of_an_array_entry_without_restating_the_table(parent):
    r = child(parent, "[[model.attention]]\nalpha = 0.3\n")
    (sem,) = r.attention
    assert sem.name == "sem" and sem.config.alpha == 0.3 and sem.config.sigma == "image"
    named = child(parent, '[[model.attention]]\nname = "sem"\nalpha = 0.3\n', "named.toml")
    assert named.attention == r.attention


def test_a_new_name_replaces_the_entry(parent):
    r = child(parent, '[[model.attention]]\nname = "spatial_attention"\n')
    (att,) = r.attention
    assert att.name == "spatial_attention"  # SEM's alpha and sigma did not follow


def test_the_child_array_sets_the_length(parent):
    r = child(parent, "[[losses]]\n[[losses]]\nweight = 2.0\n[[losses]]\nname = \"bit_balance\"\n")
    assert [(x.name, x.weight) for x in r.losses] == [("adsh", 1.0), ("quantization", 2.0), ("bit_balance", 1.0)]
    assert r.losses[0].config.gamma == 200.0
    shorter = child(parent, "[[losses]]\ngamma = 100.0\n", "shorter.toml")
    assert [x.name for x in shorter.losses] == ["adsh"] and shorter.losses[0].config.gamma == 100.0
    empty = child(parent, "[model]\nattention = []\n", "empty.toml")
    assert empty.attention == ()


def test_an_appended_entry_needs_a_name(parent):
    with pytest.raises(RecipeError, match=r"child\.toml: losses\[2\]\.name: expected a loss name"):
        child(parent, "[[losses]]\n[[losses]]\n[[losses]]\nweight = 2.0\n")


def test_plain_arrays_and_tables_without_names_are_replaced(parent):
    r = child(parent, 'code_lengths = [48]\n[optimizer]\nparam_groups = [{ match = "aggregation" }]\n')
    assert r.code_lengths == (48,)
    assert [(g.match, g.lr_mult) for g in r.optimizer.param_groups] == [("aggregation", 1.0)]


def test_errors_in_a_merged_entry_name_the_file_that_set_the_key(parent):
    with pytest.raises(RecipeError) as info:
        child(parent, '[[model.attention]]\nalpha = "high"\n')
    assert str(info.value).startswith(str(parent / "child.toml")) and "model.attention[0].alpha" in str(info.value)
    (parent / "bad_parent.toml").write_text(PARENT.replace('sigma = "image"', 'sigma = "imag"'))
    path = parent / "c2.toml"
    path.write_text('extends = "bad_parent.toml"\n[[model.attention]]\nalpha = 0.3\n')
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(info.value).startswith(str(parent / "bad_parent.toml")) and "model.attention[0].sigma" in str(info.value)


def test_merge_rule_on_data():
    base = {"a": [{"name": "x", "p": 1, "q": {"r": 1, "s": 2}}, {"name": "y", "p": 2}], "b": [1, 2]}
    top = {"a": [{"q": {"r": 5}}, {"name": "z"}], "b": [3]}
    assert deep_merge(base, top) == {"a": [{"name": "x", "p": 1, "q": {"r": 5, "s": 2}}, {"name": "z"}], "b": [3]}
    assert base["a"][0]["q"] == {"r": 1, "s": 2}  # inputs untouched
