"""``hashkit recipe validate`` builds the model (meta device) for every code length, the losses, the protocol
and the metrics: each class of problem that used to surface only in training is one line naming the file and
the key, exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hashkit.assemble import build_model
from hashkit.cli.main import main
from hashkit.preflight import ShapesOnly
from hashkit.recipe import load_recipe
from test_recipe_errors import BASE as ERRORS_BASE

RECIPES = Path(__file__).resolve().parents[1] / "recipes"

# test_recipe_errors' recipe, with a classifier for its cross-entropy loss and a small demo dataset
BASE = ERRORS_BASE.replace('name = "linear"', 'name = "linear"\nclassifier = true').replace(
    'name = "demo"', 'name = "demo"\ntrain_per_class = 2\nquery_per_class = 1')


def validate(capsys, path, *sets):
    argv = ["recipe", "validate", str(path)]
    for item in sets:
        argv += ["--set", item]
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out.strip().splitlines(), captured.err.strip().splitlines()


CASES = {
    "unknown_tap": ('[model]\ntaps = ["stage9"]\n', (), ["model.taps", "no stage 'stage9'", "stage1"]),
    "backbone_does_not_fit_aggregation": (
        ('name = "gap"', 'name = "refine_branches"'), (),
        ["model.aggregation (aggregation 'refine_branches')", "backbone 'tiny_cnn' has no stage 'layer4'"]),
    "attention_channels": ('[[model.attention]]\nname = "sem"\n', (),
                           ["model.attention[0] (attention 'sem')", "32"]),
    "loss_needs_what_the_model_lacks": ("", ("model.hash_head.classifier=false",),
                                        ["losses[0]", "needs 'class_logits'", "no classifier"]),
    "learned_database_without_learning_protocol": ('[eval]\ndatabase = ["learned"]\n', (),
                                                   ["eval.database", "'pointwise' learns none"]),
    "misspelt_metric": ('[eval]\nmetrics = ["map", "precison@10"]\n', (),
                        ["eval.metrics[1].name", "unknown metric 'precison@10'", "closest: precision@k"]),
    "dataset_root_not_a_string": ("", ('data.dataset={name="cub200", root=3}',), []),
    "nested_component_contract": (
        ('width = 4\n[model.aggregation]\nname = "gap"',
         'width = 4\nuntil = "stage3"\n[model.aggregation]\nname = "refine_branches"\nstage = "stage4"\n'
         'interaction = { name = "icon", group_width = 5, min_groups = 3 }\ninteraction_after = [0]'), (),
        ["model.aggregation.interaction (channel_interaction 'icon')", "32 channels do not split into 6 groups"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_class_of_error_is_one_line_naming_file_and_key(case, tmp_path, capsys):
    change, sets, fragments = CASES[case]
    path = tmp_path / f"{case}.toml"
    path.write_text(BASE.replace(*change) if isinstance(change, tuple) else BASE + change)
    code, out, err = validate(capsys, path, *sets)
    if case == "dataset_root_not_a_string":  # from --set a number may stand for a string (shell quoting)...
        # (a relative root from --set is the working directory's, made absolute)
        assert code == 0 and f"note: data not loaded (dataset 'cub200': root directory not found: {Path.cwd() / '3'})" \
            in out[1]
        path.write_text(BASE.replace('name = "demo"\ntrain_per_class = 2\nquery_per_class = 1',
                                     'name = "cub200"\nroot = 3'))  # ...in a file it is a type error
        code, out, err = validate(capsys, path)
        fragments = ["data.dataset.root", "expected str, found int 3"]
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"hashkit: error: {path}: "), err[0]
    for fragment in fragments:
        assert fragment in err[0], (fragment, err[0])


def test_bit_split_is_checked_at_every_code_length(capsys):
    code, _, err = validate(capsys, RECIPES / "semicon-demo.toml", "code_lengths=[12, 16, 24]")
    assert code == 2 and len(err) == 1
    assert f"{RECIPES / 'semicon-demo.toml'}: at 16 bits: model.hash_head (hash_head 'split_linear')" in err[0]
    assert 'use split = "general"' in err[0]


def test_errors_name_the_file_that_set_the_key(tmp_path, capsys):
    (tmp_path / "parent.toml").write_text(BASE + '[eval]\ndatabase = ["learned"]\n')
    child = tmp_path / "child.toml"
    child.write_text('extends = "parent.toml"\n[model.backbone]\nwidth = 8\n')
    code, _, err = validate(capsys, child)
    assert code == 2 and err[0].startswith(f"hashkit: error: {tmp_path / 'parent.toml'}: eval.database: ")


def test_shipped_recipe_validates_without_data_or_weights(capsys):
    code, out, err = validate(capsys, RECIPES / "semicon.toml")
    assert code == 0, err
    assert out[0].endswith("ok (semicon; code lengths [12, 24, 32, 48]; model, losses, protocol and metrics built)")
    assert out[1].startswith("note: data not loaded (dataset 'cub200'")


@pytest.mark.parametrize("path", sorted(RECIPES.rglob("*.toml")), ids=lambda p: str(p.relative_to(RECIPES)))
def test_every_shipped_recipe_validates(path, capsys):
    """Every recipe file under recipes/ (found by glob, so recipes added later are covered too) passes
    ``hashkit recipe validate``: datasets whose files are absent are built with placeholders (a note)."""
    code, out, err = validate(capsys, path)
    assert code == 0 and err == [], err
    assert out[0].startswith(f"{path}: ok (") and out[0].endswith("model, losses, protocol and metrics built)"), out
    assert all(line.startswith("note: ") for line in out[1:]), out


def test_meta_build_has_the_real_structure():
    """The model validate builds (meta device, no initialisation, no weights) is the trained model's shape:
    SEMICON at 48 bits has the official 42,467,398 parameters."""
    recipe = load_recipe(RECIPES / "semicon.toml")
    with ShapesOnly():
        model = build_model(recipe, 48, 200)
    params = list(model.parameters())
    assert all(p.is_meta for p in params) and sum(p.numel() for p in params) == 42_467_398
    assert torch.get_default_device().type == "cpu"  # the mode is left cleanly
