"""The composed SEMICON model: registry composition from the recipe, parameter count and official names
(the official model's 502 names), official checkpoint loading, pretrained-weight rules, and recipes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

import hashkit
from hashkit.assemble import build, make_component
from hashkit.errors import CheckpointError, ContractError, RecipeError
from hashkit.interfaces import BuildContext

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
NO_WEIGHTS = {"model.backbone.weights": "none"}


@pytest.fixture(scope="module")
def semicon48():
    torch.manual_seed(0)
    return build(RECIPES / "semicon.toml", 48, overrides=NO_WEIGHTS, load_data=False).model


def _bn(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


def _bottleneck(prefix: str, cin: int, width: int, cout: int, downsample: bool, stride_in: int = 1):
    keys = {f"{prefix}.conv1.weight": (width, cin, 1, 1), **_bn(f"{prefix}.bn1", width),
            f"{prefix}.conv2.weight": (width, width, 3, 3), **_bn(f"{prefix}.bn2", width),
            f"{prefix}.conv3.weight": (cout, width, 1, 1), **_bn(f"{prefix}.bn3", cout)}
    if downsample:
        keys |= {f"{prefix}.downsample.0.weight": (cout, cin, 1, 1), **_bn(f"{prefix}.downsample.1", cout)}
    return keys


def _icon(prefix: str, c: int = 2048, groups: int = 32):
    return {**_bn(f"{prefix}.norm", c), f"{prefix}.qkv.weight": (3 * c, c // groups, 1, 1),
            f"{prefix}.qkv.bias": (3 * c,), f"{prefix}.qkv2.weight": (3 * c, groups, 1, 1),
            f"{prefix}.qkv2.bias": (3 * c,)}


def official_semicon_shapes(L_G: int, L_L: int) -> dict[str, tuple[int, ...]]:
    """The official SEMICON state dict's names and shapes, written from the official
    models/SEMICON.py (aassxun/SEMICON @ 885cbfe0)."""
    tv = torchvision.models.resnet50(weights=None).state_dict()
    shapes = {f"backbone.{k}": tuple(v.shape) for k, v in tv.items() if not k.startswith(("fc.", "layer4."))}
    for branch in ("refine_global", "refine_local"):
        p = f"{branch}.layer4"
        shapes |= _bottleneck(f"{p}.0", 1024, 512, 2048, True) | _bottleneck(f"{p}.1", 2048, 512, 2048, False)
        shapes |= _icon(f"{p}.2") | _bottleneck(f"{p}.3", 2048, 512, 2048, False) | _icon(f"{p}.4")
    a = "attention"
    shapes |= _bottleneck(f"{a}.layer4.0", 1024, 256, 1024, False)
    shapes |= {f"{a}.layer4.1.0.weight": (256, 1024, 1, 1), **_bn(f"{a}.layer4.1.1", 256)}
    shapes |= _bottleneck(f"{a}.layer4.2", 256, 64, 256, False)
    shapes |= {f"{a}.layer4.3.0.weight": (64, 256, 1, 1), **_bn(f"{a}.layer4.3.1", 64)}
    shapes |= _bottleneck(f"{a}.layer4.4", 64, 16, 64, False)
    for k in (1, 2, 3):
        shapes |= {f"{a}.feature{k}.0.weight": (1, 64, 1, 1), **_bn(f"{a}.feature{k}.1", 1)}
    shapes |= {"W_G": (L_G, 2048), "W_L1": (L_L, 2048), "W_L2": (L_L, 2048), "W_L3": (L_L, 2048)}
    return shapes


def _params(shapes: dict[str, tuple[int, ...]], prefix: str = "") -> int:
    total = 0
    for k, s in shapes.items():
        if k.startswith(prefix) and not k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            total += int(torch.tensor(s).prod()) if s else 1
    return total


def test_recipe_composes_semicon_from_registered_components(semicon48):
    m = semicon48
    assert m.backbone.registered_name == "resnet50" and list(m.backbone.stage_specs) == ["layer1", "layer2", "layer3"]
    assert [a.registered_name for a in m.attention] == ["sem"]
    assert m.aggregation.registered_name == "refine_branches" and m.hash_head.registered_name == "split_linear"
    assert list(m.aggregation.descriptor_dims) == ["global", "local1", "local2", "local3"]
    assert [type(b).__name__ for b in m.aggregation.refine_global.layer4] == \
        ["Bottleneck", "Bottleneck", "ICON", "Bottleneck", "ICON"]
    assert m.hash_head.bits == [24, 8, 8, 8]
    recipe = hashkit.load_recipe(RECIPES / "semicon.toml")
    assert recipe.losses[0].name == "adsh" and recipe.protocol.name == "adsh"
    assert recipe.optimizer.momentum == 0.91 and recipe.optimizer.nesterov


def test_parameter_count_and_official_names(semicon48):
    from hashkit_plugins.semicon_compat import official_name

    own = semicon48.state_dict()
    assert sum(p.numel() for p in semicon48.parameters()) == 42_467_398
    official = official_semicon_shapes(24, 8)
    assert len(official) == 502 == len(own)
    mapped = {official_name(k): tuple(v.shape) for k, v in own.items()}
    assert None not in mapped and len(mapped) == len(own)  # one-to-one
    assert mapped == official
    assert _params(official, "backbone.") == 8_543_296
    assert _params(official, "refine_global.") == _params(official, "refine_local.") == 16_177_152
    assert _params(official, "attention.") == 1_471_494


@pytest.mark.parametrize("L,total", [(12, 42_393_670), (32, 42_434_630)])
def test_parameter_count_other_lengths(semicon48, L, total):
    head = make_component("hash_head", "split_linear", {}, BuildContext(
        code_length=L, descriptor_dims=dict(semicon48.aggregation.descriptor_dims)))
    body = sum(p.numel() for n, p in semicon48.named_parameters() if not n.startswith("hash_head."))
    assert body + sum(p.numel() for p in head.parameters()) == total


def test_load_official_checkpoint_roundtrip(semicon48, tmp_path):
    from hashkit_plugins.semicon_compat import hashkit_name, load_official_checkpoint, to_official_state_dict

    g = torch.Generator().manual_seed(0)
    state = {}
    for k, s in official_semicon_shapes(24, 8).items():
        state[k] = torch.randint(0, 100, s, generator=g) if k.endswith("num_batches_tracked") \
            else torch.randn(s, generator=g)
    path = tmp_path / "model.pth"
    torch.save(state, path)
    load_official_checkpoint(semicon48, path)
    own = semicon48.state_dict()
    for k, v in state.items():
        assert torch.equal(own[hashkit_name(k)], v), k
    back = to_official_state_dict(semicon48)
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)
    dp = {f"module.{k}": v for k, v in state.items()}  # nn.DataParallel prefix
    load_official_checkpoint(semicon48, dp)
    bad = dict(state)
    bad["W_G"] = torch.zeros(17, 2048)
    with pytest.raises(CheckpointError, match="W_G"):
        load_official_checkpoint(semicon48, bad)
    extra = dict(state) | {"fc.weight": torch.zeros(3)}
    with pytest.raises(CheckpointError, match="fc.weight"):
        load_official_checkpoint(semicon48, extra)
    with pytest.raises(CheckpointError):
        load_official_checkpoint(semicon48, tmp_path / "absent.pth")


# ----------------------------------------------------------------------------- pretrained weights
@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    torch.manual_seed(1)
    folder = tmp_path_factory.mktemp("hub") / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    state = torchvision.models.resnet18(weights=None).state_dict()
    path = folder / "resnet18-f37072fd.pth"
    torch.save(state, path)
    return path, state


def test_trunk_and_copy_blocks_load_as_recipe_says(resnet18_file):
    path, state = resnet18_file
    torch.manual_seed(2)
    bb = make_component("backbone", "resnet18", {"until": "layer3", "weights": str(path),
                                                 "copy_pretrained_blocks": [0]})
    own = bb.state_dict()
    assert not any(k.startswith("layer4.") for k in own)
    for k, v in own.items():
        assert torch.equal(v, state[k]), k
    stage = bb.build_stage("layer4")
    block0 = stage[0].state_dict()
    assert all(torch.equal(v, state[f"layer4.0.{k}"]) for k, v in block0.items())
    block1 = stage[1].state_dict()
    assert not torch.equal(block1["conv1.weight"], state["layer4.1.conv1.weight"])  # stays random
    assert torch.equal(block1["bn1.weight"], torch.ones(512))  # init rule: BN weight 1, bias 0
    full = make_component("backbone", "resnet18", {"until": "layer3", "weights": str(path)}).build_stage("layer4")
    assert torch.equal(full[1].conv1.weight, state["layer4.1.conv1.weight"])
    with pytest.raises(ContractError):
        make_component("backbone", "resnet18", {"until": "layer3", "weights": str(path),
                                                "copy_pretrained_blocks": [5]}).build_stage("layer4")


def test_imagenet_lookup_in_torch_home(resnet18_file, monkeypatch, tmp_path):
    path, state = resnet18_file
    monkeypatch.setenv("TORCH_HOME", str(path.parents[2]))
    bb = make_component("backbone", "resnet18", {"weights": "imagenet"})
    assert bb.weights_source == str(path) and torch.equal(bb.conv1.weight, state["conv1.weight"])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(CheckpointError, match=r"resnet18-5c106cde\.pth or resnet18-f37072fd\.pth"):
        make_component("backbone", "resnet18", {"weights": "imagenet"})
    with pytest.raises(CheckpointError, match="does not exist"):
        make_component("backbone", "resnet18", {"weights": str(tmp_path / "nope.pth")})
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, wrong)
    with pytest.raises(CheckpointError):
        make_component("backbone", "resnet18", {"weights": str(wrong)})


def test_official_semicon_pretrained_quirk_layout(resnet18_file):
    """The official resnet50 layer4 layout at resnet18 size: blocks [0, 1] pretrained, ICONs and later blocks random."""
    path, state = resnet18_file
    recipe_over = {**NO_WEIGHTS, "model.backbone.name": "resnet18", "model.backbone.weights": str(path),
                   "model.aggregation.interaction_after": [0, 1], "model.backbone.copy_pretrained_blocks": [0]}
    m = build(RECIPES / "semicon.toml", 12, overrides=recipe_over, load_data=False).model
    layer4 = m.aggregation.refine_local.layer4
    assert [type(b).__name__ for b in layer4] == ["BasicBlock", "ICON", "BasicBlock", "ICON"]
    assert torch.equal(layer4[0].conv1.weight, state["layer4.0.conv1.weight"])
    assert not torch.equal(layer4[2].conv1.weight, state["layer4.1.conv1.weight"])
    assert not torch.equal(m.aggregation.refine_global.layer4[2].conv1.weight, layer4[2].conv1.weight)


# ------------------------------------------------------------------------------------------- recipes
@pytest.mark.parametrize("name,rounds,lr,m,milestones", [
    ("cub200", 40, 2.5e-4, 2000, (40,)), ("aircraft", 40, 2.5e-4, 2000, (40,)),
    ("food101", 50, 2.5e-4, 2000, (45,)), ("nabirds", 50, 5e-4, 4000, (45,)), ("vegfru", 50, 5e-4, 4000, (45,)),
])
def test_dataset_recipes_match_official_table(name, rounds, lr, m, milestones):
    r = hashkit.load_recipe(RECIPES / f"semicon-{name}.toml")
    assert r.dataset.name == name
    assert (r.protocol.config.rounds, r.optimizer.lr, r.protocol.config.num_samples) == (rounds, lr, m)
    assert r.schedule.milestones == milestones and r.protocol.config.epochs == 30
    assert r.data.batch_size == 16 and r.optimizer.momentum == 0.91 and r.backbone.config.copy_pretrained_blocks == (0, 1)
    assert r.attention[0].config.alpha == 0.15 and r.losses[0].config.gamma == 200.0


def test_unsupported_length_needs_general_split():
    with pytest.raises(ContractError, match="general"):
        build(RECIPES / "semicon-demo.toml", 16, load_data=False)
    over = {"model.hash_head.split": "general"}
    model = build(RECIPES / "semicon-demo.toml", 16, overrides=over, load_data=False).model
    assert model.hash_head.bits == [10, 2, 2, 2]
    with pytest.raises(RecipeError):
        hashkit.load_recipe(RECIPES / "semicon.toml", {"model.attention[0].sigma": "global"})


def test_demo_model_forward_train_and_eval():
    torch.manual_seed(0)
    b = build(RECIPES / "semicon-demo.toml", 24, load_data=False)
    x = torch.randn(4, 3, 32, 32)
    out = b.model.train()(x)
    assert out.codes.shape == (4, 24) and out.maps.shape == (4, 3, 4, 4) and (out.maps >= 0).all()
    assert b.model.eval().encode(x).abs().eq(1).all()


def test_forward_wiring_matches_semicon_dataflow():
    """SEMICON's data flow written out with the model's own submodules: shared trunk, SEM maps, global branch on X,
    ONE local branch on X * A_k per map, W_G / W_Lk without bias in order [G, L1, L2, L3], tanh."""
    torch.manual_seed(0)
    model = build(RECIPES / "semicon-demo.toml", 12, load_data=False).model.eval()
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(x)
        X = model.backbone(x, ["stage3"])["stage3"]
        A = model.attention[0](X).maps
        agg, head = model.aggregation, model.hash_head
        f_g = agg.refine_global.stage4(X).mean(dim=(2, 3))
        f_l = [agg.refine_local.stage4(X * A[:, k].unsqueeze(1)).mean(dim=(2, 3)) for k in range(3)]
        s = torch.cat([f_g @ head.W_G.t()] + [f @ W.t() for f, W in zip(f_l, [head.W_L1, head.W_L2, head.W_L3])], 1)
    assert not hasattr(agg, "refine_local1")
    assert (out.codes - torch.tanh(s)).abs().max() <= 1e-5
    assert (out.maps - A).abs().max() == 0


@pytest.mark.slow
def test_demo_trains_above_untrained(tmp_path):
    from hashkit.training import train
    from hashkit.training.evaluate import evaluate_model

    torch.manual_seed(0)
    b = build(RECIPES / "semicon-demo.toml", 12)
    tr = b.data.split("train")
    b.protocol.setup(tr.targets.float(), torch.Generator().manual_seed(0))
    before = evaluate_model(b.model, b.recipe, query=b.data.split("query"), database=b.data.split("database"),
                            learned=(b.protocol.database_codes(), tr.targets.float()), device=torch.device("cpu"))
    report = train(RECIPES / "semicon-demo.toml", tmp_path / "run", code_lengths=[12])
    after = report["results"]["12"]["last"]
    assert after["learned"]["map"] > before.scores["learned"]["map"] + 0.2
    assert after["encoded"]["map"] > before.scores["encoded"]["map"] + 0.1
