"""Composition: a recipe and direct Python assembly give the same model; mismatches name both components."""

from __future__ import annotations

import pytest

import hashkit.errors
import torch

import hashkit
from hashkit.assemble import build_model, make_component
from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, FeatureSpec
from hashkit.recipe import load_recipe

RECIPE = {
    "code_lengths": [12],
    "model": {
        "backbone": {"name": "tiny_cnn", "width": 4},
        "aggregation": {"name": "gap"},
        "hash_head": {"name": "linear", "hidden": 16},
    },
    "losses": [{"name": "cross_entropy"}],
}


def test_recipe_and_python_assembly_agree():
    torch.manual_seed(0)
    from_recipe = build_model(load_recipe(RECIPE), 12)
    torch.manual_seed(0)
    backbone = make_component("backbone", "tiny_cnn", {"width": 4})
    spec = backbone.stage_specs["stage4"]
    pool = make_component("aggregation", "gap", {}, BuildContext(in_spec=spec))
    head = make_component("hash_head", "linear", {"hidden": 16},
                          BuildContext(code_length=12, descriptor_dims=pool.descriptor_dims))
    direct = hashkit.HashingModel(backbone=backbone, aggregation=pool, hash_head=head)
    assert from_recipe.state_dict().keys() == direct.state_dict().keys()
    for key, value in from_recipe.state_dict().items():
        assert torch.equal(value, direct.state_dict()[key]), key
    x = torch.randn(2, 3, 32, 32)
    from_recipe.eval(), direct.eval()
    assert torch.equal(from_recipe.encode(x), direct.encode(x))
    out = direct(x)
    assert out.codes.shape == (2, 12) and out.descriptor.shape == (2, 32)
    assert set(direct.encode(x).unique().tolist()) <= {-1.0, 1.0}


def test_head_descriptor_mismatch_names_both_components():
    backbone = make_component("backbone", "tiny_cnn", {"width": 4})
    pool = make_component("aggregation", "gap", {}, BuildContext(in_spec=backbone.stage_specs["stage4"]))
    head = make_component("hash_head", "linear", {}, BuildContext(code_length=12, descriptor_dims={"global": 99}))
    with pytest.raises(ContractError) as info:
        hashkit.HashingModel(backbone=backbone, aggregation=pool, hash_head=head)
    msg = str(info.value)
    assert "aggregation 'gap'" in msg and "hash_head 'linear'" in msg and "99" in msg and "32" in msg


def test_unknown_tap_is_a_recipe_error():
    data = {**RECIPE, "model": {**RECIPE["model"], "taps": ["layer9"]}}
    with pytest.raises(hashkit.errors.RecipeError, match="no stage 'layer9'.*stage1"):
        build_model(load_recipe(data), 12)


def test_attention_channel_mismatch_names_both():
    attention_names = hashkit.get_registry().names("attention")
    if not attention_names:
        pytest.skip("no attention component registered")
    backbone = make_component("backbone", "tiny_cnn", {"width": 4})
    name = attention_names[0]
    from hashkit.testing import _resolve_example

    ex = _resolve_example(hashkit.get_registry().get("attention", name))
    att = make_component("attention", name, ex.config, BuildContext(in_spec=FeatureSpec(16, 8)))
    pool = make_component("aggregation", "gap", {}, BuildContext(in_spec=FeatureSpec(att.out_channels)))
    with pytest.raises(ContractError) as info:
        hashkit.HashingModel(backbone=backbone, aggregation=pool, attention=[att])
    msg = str(info.value)
    assert "backbone 'tiny_cnn'" in msg and f"attention[0] '{name}'" in msg and "32 channels" in msg


def test_encode_without_hash_head_explains():
    data = {**RECIPE, "model": {k: v for k, v in RECIPE["model"].items() if k != "hash_head"}, "losses": []}
    model = build_model(load_recipe(data), None)
    with pytest.raises(ContractError, match="no hash head"):
        model.encode(torch.randn(1, 3, 32, 32))
    assert model(torch.randn(1, 3, 32, 32)).descriptor.shape == (1, 32)


def test_components_made_for_other_neighbours_fail_at_construction():
    """The README's case: gap built on stage3 (64 channels) in a model that taps stage4 (128) used to build and
    then die in encode with a raw matmul error; now construction names both components."""
    backbone = make_component("backbone", "tiny_cnn", {"width": 16})
    pool = make_component("aggregation", "gap", {}, BuildContext(in_spec=backbone.stage_specs["stage3"]))
    head = make_component("hash_head", "linear", {}, BuildContext(code_length=12,
                                                                 descriptor_dims=pool.descriptor_dims))
    with pytest.raises(ContractError) as info:
        hashkit.HashingModel(backbone=backbone, aggregation=pool, hash_head=head)
    msg = str(info.value)
    assert "backbone 'tiny_cnn' stage 'stage4' gives 128 channels" in msg and "aggregation 'gap' was built for 64" in msg
    assert hashkit.HashingModel(backbone=backbone, aggregation=pool, hash_head=head, tap="stage3").encode(
        torch.randn(1, 3, 32, 32)).shape == (1, 12)
    # the head's build context is checked too, even when the head does not keep descriptor_dims itself
    other = make_component("hash_head", "linear", {}, BuildContext(code_length=12, descriptor_dims={"global": 128}))
    with pytest.raises(ContractError, match=r"gives descriptors \{'global': 64\}.*expects \{'global': 128\}"):
        hashkit.HashingModel(backbone=backbone, aggregation=pool, hash_head=other, tap="stage3")


def test_aggregation_built_for_other_stages_or_maps_fails_at_construction():
    backbone = make_component("backbone", "tiny_cnn", {"width": 4})
    specs = backbone.stage_specs
    multi = make_component("aggregation", "gap", {}, BuildContext(in_spec=specs["stage4"],
                                                                 stages={"stage2": specs["stage2"]}))
    with pytest.raises(ContractError, match=r"built to read stage 'stage2' but the model taps \['stage4'\]"):
        hashkit.HashingModel(backbone=backbone, aggregation=multi)
    assert hashkit.HashingModel(backbone=backbone, aggregation=multi, taps=("stage2", "stage4"))
    maps = make_component("aggregation", "gap", {}, BuildContext(in_spec=specs["stage4"], num_maps=3))
    with pytest.raises(ContractError, match="the attention cascade gives 0 maps but aggregation 'gap' was built for 3"):
        hashkit.HashingModel(backbone=backbone, aggregation=maps)
