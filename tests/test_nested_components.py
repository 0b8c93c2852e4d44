"""Components inside components: a config field declared with ``nested`` / ``nested_list`` is validated from the
recipe like a top-level component table and built by the core through ``ctx.build``."""

from __future__ import annotations

import types

import attrs
import pytest
import torch

import hashkit
from hashkit.assemble import build_model, make_component
from hashkit.cli.main import main
from hashkit.errors import ContractError, RecipeError
from hashkit.interfaces import Attention, AttentionOutput, BuildContext, ComponentRef, FeatureSpec, nested_list
from hashkit.plugin_loader import add_plugin, remove_plugin
from hashkit.recipe import load_recipe

# SEMICON's composition at tiny widths: tiny_cnn trunk to stage3 (64 ch), SEM, stage4 copies (128 ch, 2 blocks)
SMALL_SEMICON = """
code_lengths = [12]
[model]
tap = "stage3"
[model.backbone]
name = "tiny_cnn"
width = 16
blocks = 2
until = "stage3"
[[model.attention]]
name = "sem"
sigma_eps = 1e-12
[model.aggregation]
name = "refine_branches"
stage = "stage4"
interaction_after = [0, 1]
interaction = { name = "icon", residual = "aligned" }
[model.hash_head]
name = "split_linear"
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def icons(module):
    return [m for m in module.modules() if type(m).__name__ == "ICON"]


def test_nested_channel_interaction_is_built_per_insertion_point_with_its_recipe_parameters(tmp_path):
    recipe = load_recipe(write(tmp_path, "r.toml", SMALL_SEMICON))
    ref = recipe.aggregation.config.interaction
    assert isinstance(ref, ComponentRef) and (ref.kind, ref.name, ref.key) == \
        ("channel_interaction", "icon", "model.aggregation.interaction")
    assert ref.config.residual == "aligned" and ref.config.group_width == 64  # typed config, defaults filled
    model = build_model(recipe, 12)
    agg = model.aggregation
    # [B0, ICON, B1, ICON] in each of the two copies: four ICONs, each its own weights, 128 stage4 channels
    assert [type(m).__name__ for m in agg.refine_global.stage4] == ["Sequential", "ICON", "_Residual", "ICON"]
    found = icons(agg)
    assert len(found) == 4 and len({id(m.qkv.weight) for m in found}) == 4
    assert all(m.channels == 128 and m.cfg.residual == "aligned" and m.registered_name == "icon" for m in found)


def test_nested_component_by_name_and_absent(tmp_path):
    by_name = SMALL_SEMICON.replace('interaction = { name = "icon", residual = "aligned" }', 'interaction = "icon"')
    model = build_model(load_recipe(write(tmp_path, "a.toml", by_name)), 12)
    assert len(icons(model)) == 4 and all(m.cfg.residual == "official" for m in icons(model))
    plain = SMALL_SEMICON.replace('interaction = { name = "icon", residual = "aligned" }\n', "")
    model = build_model(load_recipe(write(tmp_path, "b.toml", plain)), 12)
    assert icons(model) == [] and len(model.aggregation.refine_global.stage4) == 2


@pytest.mark.parametrize("table, fragments", [
    ('interaction = { name = "icn" }', ["model.aggregation.interaction.name", "unknown channel_interaction 'icn'",
                                        "closest: icon"]),
    ('interaction = { name = "icon", residul = "aligned" }', ["model.aggregation.interaction.residul",
                                                              "unknown key", "closest: 'residual'"]),
    ('interaction = { name = "icon", residual = "shuffled" }', ["model.aggregation.interaction.residual",
                                                                "'official'", "found str 'shuffled'"]),
    ('interaction = { name = "gap" }', ["model.aggregation.interaction.name", "unknown channel_interaction 'gap'"]),
    ("interaction = 3", ["model.aggregation.interaction", "expected a channel_interaction table", "found int 3"]),
])
def test_nested_tables_get_one_line_errors_naming_file_and_key(table, fragments, tmp_path, capsys):
    path = write(tmp_path, "bad.toml", SMALL_SEMICON.replace(
        'interaction = { name = "icon", residual = "aligned" }', table))
    assert main(["recipe", "validate", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_nested_errors_name_the_file_that_set_the_key(tmp_path):
    write(tmp_path, "parent.toml", SMALL_SEMICON)
    child = write(tmp_path, "child.toml", 'extends = "parent.toml"\n[model.aggregation.interaction]\nresidul = 1\n')
    with pytest.raises(RecipeError) as info:
        load_recipe(child)
    assert str(info.value).startswith(str(child)) and "model.aggregation.interaction.residul" in str(info.value)
    merged = write(tmp_path, "merged.toml", 'extends = "parent.toml"\n[model.aggregation.interaction]\n'
                                            'residual = "official"\n')
    assert load_recipe(merged).aggregation.config.interaction.config.residual == "official"


def test_model_level_channel_interaction_is_an_error_not_silently_dropped(tmp_path):
    text = SMALL_SEMICON + '[model.channel_interaction]\nname = "icon"\n'
    with pytest.raises(RecipeError, match=r"model\.channel_interaction: .*interaction = \{name = \"icon\"\}"):
        load_recipe(write(tmp_path, "old.toml", text))


def test_contract_error_inside_a_nested_component_names_its_key(tmp_path):
    # 128 channels into max(128 / 5, 3) = 25 groups does not divide
    text = SMALL_SEMICON.replace('residual = "aligned"', "group_width = 5, min_groups = 3")
    with pytest.raises(ContractError) as info:
        build_model(load_recipe(write(tmp_path, "r.toml", text)), 12)
    assert str(info.value).startswith("model.aggregation.interaction (channel_interaction 'icon'): icon: 128 channels")


def test_interaction_that_would_never_be_inserted_is_an_error(tmp_path):
    text = SMALL_SEMICON.replace("interaction_after = [0, 1]", "interaction_after = []")
    with pytest.raises(ContractError, match="interaction_after' is empty"):
        build_model(load_recipe(write(tmp_path, "r.toml", text)), 12)


def test_nested_default_is_a_validated_reference():
    agg = make_component("aggregation", "wsdan_views", {}, BuildContext(in_spec=FeatureSpec(8), num_maps=2))
    assert agg.inner.registered_name == "bap" and agg.inner.descriptor_dims == agg.descriptor_dims
    entry = hashkit.get_registry().get("aggregation", "wsdan_views")
    from hashkit.recipe.coerce import build_config
    from hashkit.recipe.describe import describe_fields

    cfg = build_config(entry.config, {}, key="model.aggregation")
    assert cfg.inner.config is not None and cfg.inner.key == "model.aggregation.inner"
    row = {r["name"]: r for r in describe_fields(entry.config)}["inner"]
    assert row["type"] == "aggregation component" and row["default"] == {"name": "bap"}


# ------------------------------------------------------------------- a list of nested components (plugin)
@attrs.frozen
class ChainConfig:
    steps: tuple[ComponentRef, ...] = nested_list("channel_interaction")


class Chain(Attention):
    """Applies each nested channel interaction in turn: (B,C,H,W) -> (B,C,H,W), no maps."""

    def __init__(self, steps, channels):
        super().__init__()
        self.steps = torch.nn.ModuleList(steps)
        self.in_channels = self.out_channels = channels

    def forward(self, x):
        for step in self.steps:
            x = step(x)
        return AttentionOutput(features=x)


def build_chain(cfg: ChainConfig, ctx):
    """Channel interactions in a row (test plugin)."""
    return Chain([ctx.build(step) for step in cfg.steps], ctx.in_spec.channels)


@pytest.fixture
def chain_plugin():
    mod = types.ModuleType("chain_plugin")
    mod.hashkit_register = hashkit.hookimpl(
        lambda register: register("attention", "chain", build_chain, config=ChainConfig))
    add_plugin(mod, "chain_plugin")
    yield
    remove_plugin("chain_plugin")


CHAIN = """
code_lengths = [8]
[model.backbone]
name = "tiny_cnn"
width = 4
[[model.attention]]
name = "chain"
steps = [{ name = "icon", residual = "aligned" }, "icon"]
[model.aggregation]
name = "gap"
[model.hash_head]
name = "linear"
"""


def test_a_list_of_nested_components(chain_plugin, tmp_path, capsys):
    recipe = load_recipe(write(tmp_path, "chain.toml", CHAIN))
    steps = recipe.attention[0].config.steps
    assert [(s.name, s.key, s.config.residual) for s in steps] == [
        ("icon", "model.attention[0].steps[0]", "aligned"), ("icon", "model.attention[0].steps[1]", "official")]
    model = build_model(recipe, 8)
    assert [m.cfg.residual for m in model.attention[0].steps] == ["aligned", "official"]
    out = model.eval()(torch.randn(2, 3, 32, 32))
    assert out.codes.shape == (2, 8)
    bad = write(tmp_path, "bad.toml", CHAIN.replace('"icon"]', '"iconn"]'))
    assert main(["recipe", "validate", str(bad)]) == 2
    line = capsys.readouterr().err.strip()
    assert "model.attention[0].steps[1].name" in line and "closest: icon" in line
    assert main(["components", "attention", "--json"]) == 0
    import json

    chain = {c["name"]: c for c in json.loads(capsys.readouterr().out)["attention"]}["chain"]
    assert chain["parameters"][0]["type"] == "list of channel_interaction components"
