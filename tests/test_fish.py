"""FISH: space filter, class filter head, attention hiding and the training loss against slow literal references
written from the reference code's description; the composed model against a literal forward on torchvision's
ResNet-50; parameter counts and reference checkpoints (names and shapes from the spec's table)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

import hashkit
from dsh_reference import (bilinear_align_corners, demo_training_step, fish_shapes, parameter_count, random_state,
                           resnet_shapes)
from hashkit.assemble import build_model, make_component
from hashkit.errors import CheckpointError, ContractError
from hashkit.interfaces import BuildContext, FeatureSpec

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
NO_WEIGHTS = {"model.backbone.weights": "none"}


# ----------------------------------------------------------------------------------------------- space filter
def literal_space_mask(features: torch.Tensor, ties: str = "reference") -> torch.Tensor:
    b, c, h, w = features.shape
    mask = torch.zeros(b, 1, h, w, dtype=torch.float64)
    for i in range(b):
        a = [[sum(float(features[i, k, y, x]) for k in range(c)) for x in range(w)] for y in range(h)]
        mean = sum(sum(row) for row in a) / (h * w)
        for y in range(h):
            for x in range(w):
                if a[y][x] > mean:
                    mask[i, 0, y, x] = 1.0
                elif a[y][x] < mean:
                    mask[i, 0, y, x] = 0.5
                else:
                    mask[i, 0, y, x] = 0.5 if ties == "half" else 0.0
    return mask


def _space_filter(**cfg):
    return make_component("attention", "space_filter", cfg, BuildContext(in_spec=FeatureSpec(5, 32)))


def test_space_filter_equals_literal_mask_and_scales_the_gradient():
    x = torch.randn(3, 5, 4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_()
    out = _space_filter()(x)
    mask = literal_space_mask(x.detach())
    assert torch.equal(out.maps, mask) and torch.allclose(out.features, x * mask)
    out.features.sum().backward()
    assert torch.equal(x.grad, mask.expand_as(x))  # the mask is a constant for autograd


@pytest.mark.parametrize("ties", ["reference", "half"])
def test_space_filter_positions_at_the_mean(ties):
    x = torch.tensor([[[[-1.0, 0.0], [0.0, 1.0]]]])  # channel sum mean 0: two positions equal it exactly
    out = make_component("attention", "space_filter", {"ties": ties}, BuildContext(in_spec=FeatureSpec(1, 32)))(x)
    assert torch.equal(out.maps, literal_space_mask(x, ties).float())
    assert out.maps[0, 0, 0, 1] == (0.5 if ties == "half" else 0.0)


# ------------------------------------------------------------------------------------------- class filter head
def _class_filter(L=6, C=5, D=7, rate=0.7):
    torch.manual_seed(1)
    return make_component("hash_head", "class_filter", {"class_mask_rate": rate},
                          BuildContext(code_length=L, num_classes=C, descriptor_dims={"global": D})).double()


def literal_class_filter(head, f: torch.Tensor, rate: float):
    z = f @ head.fc.weight.t() + head.fc.bias
    mask = torch.full_like(z, rate).detach()
    for i in range(z.shape[0]):
        row = [float(v) for v in z[i].detach()]
        mask[i, row.index(max(row))] = 1.0  # first index of the maximum
    return z, (z * mask) @ head.b.weight.t() + head.b.bias


def test_class_filter_head_values_and_gradients_equal_literal():
    head = _class_filter()
    f = torch.randn(4, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(2)).requires_grad_()
    out = head({"global": f})
    ref_f = f.detach().clone().requires_grad_()
    z, h = literal_class_filter(head, ref_f, 0.7)
    assert torch.allclose(out.class_logits, z) and torch.allclose(out.logits, h)
    assert torch.allclose(out.codes, torch.tanh(h)) and torch.equal(torch.sign(out.codes), torch.sign(h))
    weights = torch.randn(4, 6, dtype=torch.float64)
    (out.logits * weights).sum().backward()
    (h * weights).sum().backward()
    assert torch.allclose(f.grad, ref_f.grad)


def test_class_filter_ties_take_the_first_maximum():
    head = _class_filter(rate=0.3)
    with torch.no_grad():
        head.fc.weight.zero_()
        head.fc.bias.copy_(torch.tensor([1.0, 3.0, 3.0, -2.0, 3.0]))
    out = head({"global": torch.randn(2, 7, dtype=torch.float64)})
    expected = (torch.tensor([1.0, 3.0, 3.0, -2.0, 3.0]) * torch.tensor([0.3, 1.0, 0.3, 0.3, 0.3])).double()
    assert torch.allclose(out.logits, (expected @ head.b.weight.t() + head.b.bias).expand(2, -1))


def test_class_filter_needs_classes():
    with pytest.raises(ContractError, match="number of classes"):
        make_component("hash_head", "class_filter", {}, BuildContext(code_length=12, descriptor_dims={"global": 4}))


# ---------------------------------------------------------------------------------------------- attention hiding
def literal_hide(images: torch.Tensor, features: torch.Tensor, thetas: list[float]) -> torch.Tensor:
    """fish.py: channel sum -> bilinear (align_corners) to the image size -> keep pixels < θ · max, per image."""
    out = images.double().clone()
    h, w = images.shape[-2:]
    for i in range(images.shape[0]):
        a = bilinear_align_corners(features[i].double().sum(0).numpy(), h, w)
        keep = a < thetas[i] * a.max()
        out[i] *= torch.from_numpy(keep.astype(np.float64))
    return out


def test_hide_view_equals_literal():
    from hashkit_plugins.aggregation.attention_hide import hide_view

    g = torch.Generator().manual_seed(3)
    images = torch.randn(3, 3, 11, 9, generator=g)
    features = torch.randn(3, 4, 3, 4, generator=g).relu()
    thetas = [0.9, 0.95, 1.0]
    got = hide_view(images, features, torch.tensor(thetas))
    assert torch.allclose(got.double(), literal_hide(images, features, thetas), atol=1e-6)
    assert (got == 0).any() and (got != 0).any()


def test_hide_reference_size_needs_224_pixel_inputs():
    agg = make_component("aggregation", "attention_hide", {"stage": "s"},
                         BuildContext(in_spec=FeatureSpec(4, 8), stages={"s": FeatureSpec(4, 8)}))
    from hashkit.interfaces import AggregationInput

    feats = torch.rand(2, 4, 4, 4)
    with pytest.raises(ContractError, match="hide_size"):
        agg(AggregationInput(features=feats, stages={"s": feats}, image=torch.randn(2, 3, 32, 32)))
    agg.eval()  # no views in eval mode: any size
    out = agg(AggregationInput(features=feats, stages={"s": feats}, image=torch.randn(2, 3, 32, 32)))
    assert "views" not in out.extras and out.descriptors["global"].shape == (2, 4)


def test_hide_stage_must_be_tapped():
    with pytest.raises(ContractError, match="needs stage 'layer4' tapped"):
        make_component("aggregation", "attention_hide", {"stage": "layer4"},
                       BuildContext(in_spec=FeatureSpec(4, 8), stages={"stage4": FeatureSpec(4, 8)}))


# --------------------------------------------------------------------------------------- one training step
def test_training_loss_and_gradients_equal_literal_fish_step():
    """fish-demo's model (tiny_cnn) in train mode: the loss and every gradient equal fish.py's step written out
    (two train-mode forwards, CE + CE(hidden) + MSE to the proxy codes), θ drawn from the same generator."""
    step = demo_training_step(RECIPES / "fish-demo.toml", [0, 3, 3, 7], data_seed=4, forward_seed=11)
    model, ref, x, labels, targets, res = step.model, step.ref, step.x, step.labels, step.targets, step.result

    def literal_forward(images):
        fm = ref.backbone(images, ["stage4"])["stage4"]
        a = fm.detach().sum(dim=1, keepdim=True)
        mean = a.mean(dim=(2, 3), keepdim=True)
        m = (a > mean).float() + (a < mean).float() * 0.5
        f = (fm * m).mean(dim=(2, 3))
        z, h = literal_class_filter(ref.hash_head, f, 0.7)
        return fm, z, h

    torch.manual_seed(11)
    fm, z, h = literal_forward(x)
    thetas = (0.9 + 0.1 * torch.rand(4)).tolist()
    hidden = literal_hide(x, fm.detach(), thetas).float()
    _, z_hidden, _ = literal_forward(hidden)
    y = labels.argmax(1)
    literal = F.cross_entropy(z, y) + F.cross_entropy(z_hidden, y) + ((h - targets) ** 2).mean()
    literal.backward()
    assert torch.allclose(res.value, literal, atol=1e-5)
    for (name, p), (_, q) in zip(model.named_parameters(), ref.named_parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-5), name
    for (name, b1), (_, b2) in zip(model.named_buffers(), ref.named_buffers()):
        assert torch.allclose(b1.float(), b2.float()), name  # BatchNorm statistics: two updates each


# ---------------------------------------------------------------------------- composed model, counts, checkpoints
@pytest.fixture(scope="module")
def fish12():
    torch.manual_seed(0)
    recipe = hashkit.load_recipe(RECIPES / "fish.toml", NO_WEIGHTS)
    return build_model(recipe, 12, 190)


def test_recipe_composes_fish(fish12):
    assert fish12.backbone.registered_name == "resnet50" and list(fish12.backbone.stage_specs)[-1] == "layer4"
    assert [a.registered_name for a in fish12.attention] == ["space_filter"]
    assert fish12.aggregation.registered_name == "attention_hide"
    assert fish12.aggregation.inner.registered_name == "gap"
    assert fish12.hash_head.registered_name == "class_filter" and fish12.zero_to == "zero"


@pytest.mark.parametrize("L,expected", [(12, 23_899_634), (48, 23_906_510)])
def test_parameter_counts_equal_the_reference(fish12, L, expected):
    head = make_component("hash_head", "class_filter", {}, BuildContext(code_length=L, num_classes=190,
                                                                        descriptor_dims={"global": 2048}))
    trunk = sum(p.numel() for p in fish12.backbone.parameters())
    assert trunk + sum(p.numel() for p in head.parameters()) == expected == parameter_count(fish_shapes(L, 190))


@pytest.fixture(scope="module")
def fish_state():
    shapes = fish_shapes(12, 190)
    assert len(shapes) == 322
    return random_state(shapes)


def test_reference_checkpoint_loads_one_to_one_and_forward_equals_literal(fish12, fish_state, tmp_path):
    from hashkit_plugins.reference_checkpoints import fish

    state = fish_state
    path = tmp_path / "model.pkl"
    torch.save(state, path)
    assert fish.load_checkpoint(fish12, path) == []
    back = fish.to_reference(fish12)
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)

    # literal forward of models/fish.py on torchvision's ResNet-50 with the same weights (eval mode)
    tv = torchvision.models.resnet50(weights=None)
    tv.fc = torch.nn.Linear(2048, 190)
    tv.load_state_dict({k[len("model."):]: v for k, v in state.items() if not k.startswith("model.b.")})
    tv.eval()
    fish12.eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        fm = tv.layer4(tv.layer3(tv.layer2(tv.layer1(tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))))))
        a = fm.sum(dim=1, keepdim=True)
        mask = (a > a.mean(dim=(2, 3), keepdim=True)).float() + (a < a.mean(dim=(2, 3), keepdim=True)).float() * 0.5
        z = tv.fc((fm * mask).mean(dim=(2, 3)))
        cmask = torch.full_like(z, 0.7)
        cmask[torch.arange(2), z.argmax(1)] = 1.0
        h = (z * cmask) @ state["model.b.weight"].t() + state["model.b.bias"]
        out = fish12(x)
    assert torch.allclose(out.class_logits, z, atol=1e-5) and torch.allclose(out.logits, h, atol=1e-5)


def test_reference_checkpoint_errors_and_wrappers(fish12, fish_state):
    from hashkit_plugins.reference_checkpoints import fish

    state = fish_state
    fish.load_checkpoint(fish12, {f"module.{k}": v for k, v in state.items()})  # nn.DataParallel
    with pytest.raises(CheckpointError, match="model.b.weight"):
        fish.load_checkpoint(fish12, state | {"model.b.weight": torch.zeros(48, 190)})
    with pytest.raises(CheckpointError, match="extra.key"):
        fish.load_checkpoint(fish12, state | {"extra.key": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"model\.fc\.bias \(hashkit model\.hash_head\.fc\.bias\)"):
        fish.load_checkpoint(fish12, {k: v for k, v in state.items() if k != "model.fc.bias"})


def test_official_resnet18_checkpoint_loads_into_fish_official():
    from hashkit_plugins.reference_checkpoints import fish

    recipe = hashkit.load_recipe(RECIPES / "fish-official.toml", NO_WEIGHTS)
    model = build_model(recipe, 32, 200)
    shapes = resnet_shapes("model.", depth=18, fc=(200, 512)) | {"model.b.weight": (32, 200), "model.b.bias": (32,)}
    state = random_state(shapes, seed=2)
    fish.load_checkpoint(model, {f"module.{k}": v for k, v in state.items()})  # the official code wraps DataParallel
    assert torch.equal(model.hash_head.fc.weight, state["model.fc.weight"])
    assert torch.equal(model.backbone.layer4[1].conv2.weight, state["model.layer4.1.conv2.weight"])
