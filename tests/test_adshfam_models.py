"""A2-Net, ExchNet, AGMH and DAHNet composed from their recipes: parameter counts at 12 and 48 bits, the
reference state-dict names and shapes (written here from the reference layer definitions of
aassxun/DSH_Analysis @ 44271bc and ludics/fghash @ 077160f), strict one-to-one loading of a reference
checkpoint, pretrained-weight layouts, and the per-dataset recipes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

import hashkit
from hashkit.assemble import make_component
from hashkit.errors import CheckpointError
from hashkit.interfaces import BuildContext, FeatureSpec
from reference_shapes import (attention_trunk_shapes, bn, bottleneck, layer4_shapes, parameter_count, random_state,
                              resnet_shapes)

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
NO_WEIGHTS = {"model.backbone.weights": "none"}


def _model(recipe: str, L: int, num_classes: int | None = None, **over):
    torch.manual_seed(0)
    recipe = hashkit.load_recipe(RECIPES / f"{recipe}.toml", {**NO_WEIGHTS, **over})
    from hashkit.assemble import build_model

    return build_model(recipe, L, num_classes)


def _params(module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------------ reference tables
def _one_shot_attention(M: int) -> dict[str, tuple[int, ...]]:
    return attention_trunk_shapes("attention.layer4") | {"attention.layer4.5.0.weight": (M, 64, 1, 1),
                                                         **bn("attention.layer4.5.1", M)}


def _skeleton(M: int) -> dict[str, tuple[int, ...]]:
    """backbone + refine_global + refine_local + one-shot attention: A2-Net's and ExchNet's shared part."""
    return (resnet_shapes("backbone.", layer4=False) | layer4_shapes("refine_global.layer4")
            | layer4_shapes("refine_local.layer4") | _one_shot_attention(M))


def _generator(prefix: str) -> dict[str, tuple[int, ...]]:
    chans = [512, 256, 128, 64, 32, 16, 3]
    shapes = {}
    for i in range(6):
        k = 7 if i == 0 else 4
        shapes[f"{prefix}.layer{i + 1}.0.weight"] = (chans[i], chans[i + 1], k, k)  # ConvTranspose2d (in, out, k, k)
        shapes |= bn(f"{prefix}.layer{i + 1}.1", chans[i + 1])
    return shapes


def a2net_reference(L: int, M: int, generators: bool = True) -> dict[str, tuple[int, ...]]:
    shapes = {"W": (L, (M + 1) * 2048)} | _skeleton(M)
    if generators:
        D = (M + 1) * 2048
        shapes |= {"encoder.weight": (512, D), "encoder.bias": (512,), "encoder2.weight": (512, D),
                   "encoder2.bias": (512,)}
        shapes |= _generator("netG") | _generator("netG2")
    return shapes


def exchnet_reference(L: int) -> dict[str, tuple[int, ...]]:
    return _skeleton(4) | {"hash_layer.0.weight": (L, 5 * 2048), "hash_layer.0.bias": (L,)}


def _siea(prefix: str) -> dict[str, tuple[int, ...]]:
    shapes = {f"{prefix}.conv1.weight": (512, 512, 1, 1), f"{prefix}.conv1.bias": (512,)}
    shapes |= {f"{prefix}.qry_conv.{n}.weight": (128, 512, 1) for n in range(4)}
    shapes |= {f"{prefix}.alt_conv.{n}.weight": (128, 256, 1) for n in range(3)}
    shapes |= {f"{prefix}.linear.weight": (512, 128, 1), f"{prefix}.conv2.0.weight": (512, 512, 1, 1)}
    return shapes | bn(f"{prefix}.conv2.1", 512)


def agmh_reference(L: int) -> dict[str, tuple[int, ...]]:
    shapes = {"hash_map": (L, 3072)} | resnet_shapes("backbone.")
    for k in range(6):
        shapes |= {f"refine.conv_list.{k}.0.weight": (512, 2048, 1, 1), f"refine.conv_list.{k}.0.bias": (512,),
                   **bn(f"refine.conv_list.{k}.1", 512)}
        shapes |= _siea(f"refine.attn_list.{k}")
    return shapes


def _cfm(prefix: str) -> dict[str, tuple[int, ...]]:
    m = f"{prefix}.channel_mixer.mlp"
    shapes = {f"{m}.conv1.0.weight": (6144, 2048, 1, 1), f"{m}.conv1.0.bias": (6144,), **bn(f"{m}.conv1.2", 6144),
              f"{m}.proj.weight": (6144, 1, 3, 3), f"{m}.proj.bias": (6144,), **bn(f"{m}.proj_bn", 6144),
              f"{m}.conv2.0.weight": (2048, 6144, 1, 1), f"{m}.conv2.0.bias": (2048,), **bn(f"{m}.conv2.1", 2048)}
    a = f"{prefix}.channel_mixer.channel_att"
    return shapes | {f"{a}.conv1.weight": (512, 2048, 1, 1), f"{a}.conv1.bias": (512,), **bn(f"{a}.bn1", 512),
                     f"{a}.conv2.weight": (2048, 512, 1, 1), f"{a}.conv2.bias": (2048,)}


def dahnet_reference(L: int, C: int) -> dict[str, tuple[int, ...]]:
    glob = L - 3 * (L // 6)
    shapes = {"W_G": (glob, 2048), **{f"W_L{k}": (L // 6, 2048) for k in (1, 2, 3)}}
    shapes |= resnet_shapes("backbone.", layer4=False)
    for branch in ("stripconv", "stripconv_h"):
        shapes |= {f"attention.{branch}.0.weight": (1, 1024, 1, 1), f"attention.{branch}.0.bias": (1,),
                   **bn(f"attention.{branch}.1", 1)}
    shapes |= bottleneck("trans.layer4.0", 1024, 512, 2048, True) | layer4_shapes("refine_global.layer4")
    shapes |= bottleneck("refine_local.layer4.0", 2048, 512, 2048, False) | _cfm("refine_local.layer4.1")
    shapes |= bottleneck("refine_local.layer4.2", 2048, 512, 2048, False)
    return shapes | {"cls.weight": (C, 2048), "cls.bias": (C,), "cls_loc.weight": (C, 2048), "cls_loc.bias": (C,)}


@pytest.mark.parametrize("table,keys,params", [
    (lambda: a2net_reference(12, 12), 527, 81_769_572), (lambda: a2net_reference(48, 48), 527, 161_766_828),
    (lambda: a2net_reference(12, 12, False), 451, 40_264_344), (lambda: a2net_reference(48, 48, False), 451, 44_764_128),
    (lambda: exchnet_reference(12), 452, 40_067_220), (lambda: exchnet_reference(48), 452, 40_435_896),
    (lambda: agmh_reference(12), 457, 35_556_416), (lambda: agmh_reference(48), 457, 35_667_008),
    (lambda: dahnet_reference(12, 190), 430, 66_642_882), (lambda: dahnet_reference(48, 190), 430, 66_716_610),
])
def test_reference_tables_match_the_published_counts(table, keys, params):
    """The tables written above reproduce the reference models' key counts and parameter counts."""
    shapes = table()
    assert len(shapes) == keys and parameter_count(shapes) == params


# ---------------------------------------------------------------------------------------- models
@pytest.fixture(scope="module")
def a2net12():
    return _model("a2net-dsh", 12)  # M = L, the DSH_Analysis model


@pytest.fixture(scope="module")
def exchnet12():
    return _model("exchnet", 12)


@pytest.fixture(scope="module")
def agmh48():
    return _model("agmh", 48)


@pytest.fixture(scope="module")
def dahnet12():
    return _model("dahnet", 12, num_classes=190)


def _with_head(model, L: int, **extra) -> int:
    """Parameters of ``model`` with its hash head rebuilt at ``L`` bits (same recipe head config)."""
    head = model.hash_head
    ctx = BuildContext(code_length=L, descriptor_dims=dict(model.aggregation.descriptor_dims),
                       num_classes=getattr(head, "num_classes", 0) or None)
    new = make_component("hash_head", head.registered_name, head.cfg, ctx)
    return _params(model) - _params(head) + _params(new) + sum(extra.values())


def test_a2net_counts(a2net12):
    assert _params(a2net12) == 40_264_344  # M = L = 12, reference without generators
    att48 = make_component("attention", "part_attention", {"num_maps": "code_length"},
                           BuildContext(in_spec=FeatureSpec(1024, 16), code_length=48))
    body = _params(a2net12) - _params(a2net12.attention) - _params(a2net12.hash_head)
    w48 = 48 * 49 * 2048
    assert body + _params(att48) + w48 == 44_764_128  # M = L = 48
    m4 = _model("a2net", 12)
    assert _params(m4) == 40_067_208 and _with_head(m4, 48) == 40_435_848  # the recipe's M = 4


def test_exchnet_agmh_dahnet_counts(exchnet12, agmh48, dahnet12):
    assert _params(exchnet12) == 40_067_220 and _with_head(exchnet12, 48) == 40_435_896
    assert _params(agmh48) == 35_667_008 and _with_head(agmh48, 12) == 35_556_416
    assert _params(dahnet12) == 66_642_882 and _with_head(dahnet12, 48) == 66_716_610
    assert _params(dahnet12.aggregation.refine_local.layer4[1]) == 27_364_864  # CFM
    assert _params(agmh48.aggregation.siea[0]) == 951_808


@pytest.mark.parametrize("method,fixture,table", [
    ("a2net", "a2net12", lambda: a2net_reference(12, 12)),
    ("exchnet", "exchnet12", lambda: exchnet_reference(12)),
    ("agmh", "agmh48", lambda: agmh_reference(48)),
    ("dahnet", "dahnet12", lambda: dahnet_reference(12, 190)),
])
def test_reference_checkpoint_loads_one_to_one(method, fixture, table, request, tmp_path):
    import importlib

    loader = importlib.import_module(f"hashkit_plugins.reference_checkpoints.{method}")
    names = loader.NAMES

    def hashkit_name(reference: str) -> str | None:
        name = names.hashkit_name(reference)
        return None if name is None or names.ignored(reference) else name.removeprefix("model.")

    model = request.getfixturevalue(fixture)
    shapes = table()
    own = model.state_dict()
    kept = {k: s for k, s in shapes.items() if hashkit_name(k) is not None}
    dropped = set(shapes) - set(kept)
    assert dropped == ({k for k in shapes if k.startswith(("encoder", "netG"))} if method == "a2net" else set())
    assert len(kept) == len(own)
    assert {hashkit_name(k): s for k, s in kept.items()} == {k: tuple(v.shape) for k, v in own.items()}

    state = random_state(shapes)
    source = {f"module.{k}": v for k, v in state.items()}  # a DataParallel checkpoint
    if method == "exchnet":  # one file through the weights_only reader
        torch.save(source, tmp_path / "model.pth")
        source = tmp_path / "model.pth"
    ignored = loader.load_checkpoint(model, source)
    assert {k.removeprefix("module.") for k in ignored} == dropped
    own = model.state_dict()
    for k in kept:
        assert torch.equal(own[hashkit_name(k)], state[k]), k
    back = loader.to_reference(model)
    assert set(back) == set(kept) and all(torch.equal(back[k], state[k]) for k in kept)

    first = next(iter(kept))
    with pytest.raises(CheckpointError, match="missing"):
        loader.load_checkpoint(model, {k: v for k, v in state.items() if k != first})
    with pytest.raises(CheckpointError, match="fc.weight"):
        loader.load_checkpoint(model, state | {"fc.weight": torch.zeros(3)})
    bad = dict(state)
    bad[first] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="shape"):
        loader.load_checkpoint(model, bad)


# ------------------------------------------------------------------------------- pretrained layouts
@pytest.fixture(scope="module")
def resnet50_file(tmp_path_factory):
    """A torchvision-layout ResNet-50 file without num_batches_tracked entries (like the V1 release)."""
    torch.manual_seed(3)
    state = {k: v for k, v in torchvision.models.resnet50(weights=None).state_dict().items()
             if not k.endswith("num_batches_tracked")}
    path = tmp_path_factory.mktemp("weights") / "resnet50-v1.pth"
    torch.save(state, path)
    return path, state


def test_dahnet_pretrained_layout(resnet50_file):
    """trans = ImageNet layer4.0, refine_local blocks = layer4.1 and layer4.2 around a random CFM, global = all
    of layer4 (reference: models/DAHNET.py Trans / Trans_refine / SEMICON_refine)."""
    path, state = resnet50_file
    model = _model("dahnet", 12, num_classes=5, **{"model.backbone.weights": str(path)})
    agg = model.aggregation

    def same(module, prefix):
        return all(torch.equal(v, state[f"{prefix}.{k}"]) for k, v in module.state_dict().items()
                   if not k.endswith("num_batches_tracked"))

    assert same(agg.local_stem, "layer4.0")
    assert same(agg.refine_local.layer4[0], "layer4.1") and same(agg.refine_local.layer4[2], "layer4.2")
    assert all(same(agg.refine_global.layer4[i], f"layer4.{i}") for i in range(3))
    assert type(agg.refine_local.layer4[1]).__name__ == "CFM"
    assert same(model.backbone.layer3, "layer3")


def test_agmh_backbone_is_strict_resnet50_with_stride1_layer4(resnet50_file):
    path, state = resnet50_file
    model = _model("agmh", 12, **{"model.backbone.weights": str(path)})
    own = model.backbone.state_dict()
    assert {k for k in own if not k.endswith("num_batches_tracked")} == {k for k in state if not k.startswith("fc.")}
    assert all(torch.equal(own[k], state[k]) for k in state if not k.startswith("fc."))
    layer4 = model.backbone.layer4[0]
    assert layer4.conv2.stride == (1, 1) and layer4.downsample[0].stride == (1, 1)
    assert model.backbone.stage_specs["layer4"].stride == 16
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert model.backbone.eval()(x, ["layer4"])["layer4"].shape == (1, 2048, 4, 4)


# ------------------------------------------------------------------------------------------- recipes
DATASETS = {"cub200": 2000, "aircraft": 2000, "food101": 2000, "nabirds": 4000, "stanford_dogs": 2000,
            "vegfru": 4000}


@pytest.mark.parametrize("method", ["a2net", "exchnet", "agmh", "dahnet"])
@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_dataset_recipes_use_the_benchmark_settings(method, dataset):
    r = hashkit.load_recipe(RECIPES / f"{method}-{dataset}.toml")
    assert r.dataset.name == dataset and r.protocol.config.num_samples == DATASETS[dataset]
    assert (r.protocol.config.rounds, r.protocol.config.epochs, r.data.batch_size) == (40, 30, 16)
    assert r.schedule.milestones == (35,)
    assert r.protocol.config.gamma == r.losses[0].config.gamma == (0.0 if method == "exchnet" else 200.0)
    lr = {"a2net": 1e-4, "exchnet": 1e-4, "agmh": 1e-3,
          "dahnet": 5e-4 if dataset in ("nabirds", "vegfru") else 2.5e-4}[method]
    assert r.optimizer.lr == lr and r.optimizer.name == "sgd"
    assert r.optimizer.nesterov == (method in ("agmh", "dahnet"))
    assert r.optimizer.momentum == (0.91 if method == "dahnet" else 0.9)
    for key in ("code", "parameters_48_bits"):
        assert key in r.raw["provenance"]
    if method == "a2net":  # the benchmark's M = L (a2net-dsh.toml)
        assert r.attention[0].config.num_maps == "code_length"


def test_variant_and_preset_recipes():
    minus = hashkit.load_recipe(RECIPES / "dahnet-minus.toml")
    assert [loss.name for loss in minus.losses] == ["adsh"]
    assert minus.hash_head.config.classifier == "global_local"  # heads kept, untrained
    star = hashkit.load_recipe(RECIPES / "dahnet.toml")
    assert [loss.name for loss in star.losses] == ["adsh", "cross_entropy"]
    assert (star.losses[1].config.global_weight, star.losses[1].config.local_weight) == (0.5, 1 / 6)
    fghash = hashkit.load_recipe(RECIPES / "exchnet-fghash.toml")
    assert fghash.protocol.config.anchors_after == 50 and fghash.protocol.config.gamma == 0.0
    assert fghash.losses[0].config.gamma == 0.0 and fghash.optimizer.name == "adam"
    dsh = hashkit.load_recipe(RECIPES / "exchnet-dsh.toml")
    assert dsh.protocol.config.anchors_after == 35 and dsh.losses[0].config.gamma == 0.0
    base = hashkit.load_recipe(RECIPES / "exchnet.toml")
    assert base.protocol.config.anchors_after == 25 and base.losses[0].config.gamma == 200.0
    a2 = hashkit.load_recipe(RECIPES / "a2net.toml")
    assert [(loss.name, getattr(loss.config, "from_round", None)) for loss in a2.losses] == \
        [("adsh", None), ("reconstruction", 20), ("bit_decorrelation", 20)]
    official = hashkit.load_recipe(RECIPES / "agmh-official.toml")
    assert official.data.batch_size == 32 and official.schedule.milestones == (40,)


def test_recipe_show_prints_the_reference_count(capsys):
    from hashkit.cli.main import main

    assert main(["recipe", "show", "exchnet", "--code-length", "48", "--set", "model.backbone.weights=none"]) == 0
    out = capsys.readouterr().out
    assert "parameters_48_bits = 40435896" in out and "40,435,896" in out
    # the others' reference counts (the tables above; the built models' counts are checked in the count tests)
    for recipe, table in (("a2net-dsh", a2net_reference(48, 48, False)), ("agmh", agmh_reference(48)),
                          ("dahnet", dahnet_reference(48, 190))):
        assert main(["recipe", "show", recipe, "--no-model"]) == 0
        assert f"parameters_48_bits = {parameter_count(table)}\n" in capsys.readouterr().out, recipe
