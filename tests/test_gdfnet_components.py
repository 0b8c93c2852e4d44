"""GDF-Net components: Inception-v3 backbone, attention parts, BAP, the hash head options, WS-DAN views."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hashkit.assemble import make_component
from hashkit.errors import CheckpointError, ContractError
from hashkit.interfaces import AggregationInput, BuildContext, FeatureSpec, LossInputs
from hashkit.testing import check_component
from hashkit_plugins.aggregation.wsdan_views import (WsdanViewsConfig, attention_crop, attention_drop,
                                                    sample_view_maps)

COMPONENTS = [("attention", "attention_parts"), ("aggregation", "bap"), ("aggregation", "knn_graph"),
              ("aggregation", "wsdan_views"), ("hash_head", "linear")]


@pytest.mark.parametrize("kind,name", COMPONENTS)
def test_conformance(kind, name):
    check_component(kind, name)


# ---------------------------------------------------------------- Inception-v3
@pytest.mark.slow
def test_inception_conformance():
    check_component("backbone", "inception_v3")


def test_inception_imagenet_weights_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(CheckpointError, match="inception_v3_google-0cc3c7bd.pth.*never downloads"):
        make_component("backbone", "inception_v3", {"weights": "imagenet"})
    with pytest.raises(CheckpointError, match="does not exist"):
        make_component("backbone", "inception_v3", {"weights": str(tmp_path / "nope.pth")})


def _assert_close_rel(a, b, tol=1e-5):
    """Relative error of the whole tensor (random-init activations grow large; conv algorithms round differently)."""
    assert a.shape == b.shape
    assert ((a - b).norm() / b.norm()).item() < tol


@pytest.mark.slow
def test_inception_loads_torchvision_weights_and_matches_torchvision(tmp_path):
    from torchvision.models.inception import Inception3

    torch.manual_seed(0)
    ref = Inception3(aux_logits=True, init_weights=True, transform_input=True).eval()
    path = tmp_path / "inception.pth"
    torch.save(ref.state_dict(), path)
    bb = make_component("backbone", "inception_v3", {"weights": str(path), "until": "Mixed_6e"}).eval()
    assert bb.transform_input
    x = torch.randn(1, 3, 80, 80)
    with torch.no_grad():
        out = bb(x, ["Mixed_5d", "Mixed_6e"])
        y = ref._transform_input(x)
        for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
                     "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d"):
            y = getattr(ref, name)(y)
        _assert_close_rel(out["Mixed_5d"], y)
        for name in ("Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
            y = getattr(ref, name)(y)
        _assert_close_rel(out["Mixed_6e"], y)
        # the extra stage is built with the same file's weights
        m7 = bb.build_stage("Mixed_7c").eval()
        _assert_close_rel(m7(y), ref.Mixed_7c(ref.Mixed_7b(ref.Mixed_7a(y))))
    assert list(bb.stage_specs) == ["stem", "Mixed_5d", "Mixed_6e"] and bb.stage_specs["Mixed_6e"].channels == 768
    # a file lacking trunk weights is rejected by name
    state = ref.state_dict()
    del state["Mixed_6e.branch1x1.conv.weight"]
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="Mixed_6e"):
        make_component("backbone", "inception_v3", {"weights": str(path)})


# ---------------------------------------------------------------- attention parts and BAP
def test_attention_parts_maps_are_conv_bn_relu_and_features_pass_through():
    att = make_component("attention", "attention_parts", {"num_maps": 5}, BuildContext(in_spec=FeatureSpec(7))).eval()
    x = torch.randn(2, 7, 4, 3)
    out = att(x)
    assert out.features is x and out.maps.shape == (2, 5, 4, 3)
    conv = torch.einsum("mc,bchw->bmhw", att.conv.weight[:, :, 0, 0], x)
    bn = att.bn
    ref = ((conv - bn.running_mean[None, :, None, None]) / torch.sqrt(bn.running_var[None, :, None, None] + bn.eps)
           * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]).clamp_min(0)
    torch.testing.assert_close(out.maps, ref)
    assert bn.eps == 1e-3 and att.conv.bias is None


def test_bap_matches_literal_formula():
    agg = make_component("aggregation", "bap", {}, BuildContext(in_spec=FeatureSpec(3), num_maps=2))
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 3, 2, 2, generator=g)
    maps = torch.rand(2, 2, 2, 2, generator=g)
    out = agg(AggregationInput(features=feats, maps=maps)).descriptors["bap"]
    for b in range(2):
        vec = []
        for m in range(2):  # part-major: index m*C + c
            for c in range(3):
                vec.append(float((feats[b, c] * maps[b, m]).sum()) / 4)
        v = torch.tensor(vec)
        v = torch.sign(v) * torch.sqrt(v.abs() + 1e-12)
        torch.testing.assert_close(out[b], v / v.norm())


# ---------------------------------------------------------------- hash head options used by GDF-Net
def test_linear_head_gdfnet_options():
    ctx = BuildContext(code_length=6, num_classes=4, descriptor_dims={"bap": 5, "graph": 3})
    head = make_component("hash_head", "linear", {"scale": 100.0, "scale_at": "input", "classifier": True,
                                                  "classifier_on": "logits", "classifier_bias": False}, ctx)
    g = torch.Generator().manual_seed(0)
    desc = {"bap": torch.randn(2, 5, generator=g), "graph": torch.randn(2, 3, generator=g)}
    out = head(desc)
    z = torch.cat([desc["bap"], desc["graph"]], dim=1)
    lin = head.hash[0]
    h = (100 * z) @ lin.weight.t() + lin.bias  # Linear(100 z): the bias is not scaled
    torch.testing.assert_close(out.logits, h)
    torch.testing.assert_close(out.codes, torch.tanh(h))
    assert head.classifier.bias is None
    torch.testing.assert_close(out.class_logits, h @ head.classifier.weight.t())


# ---------------------------------------------------------------- WS-DAN views
def test_sample_view_maps_draws_proportional_to_sqrt_of_map_sums():
    maps = torch.zeros(1, 3, 2, 2)
    maps[0, 0] = 1.0  # sum 4 -> weight 2
    maps[0, 2] = 0.25  # sum 1 -> weight 1; map 1 is empty
    g = torch.Generator().manual_seed(0)
    picks = torch.cat([sample_view_maps(maps, g)[0, :, 0, 0] for _ in range(3000)])
    frac_first = (picks == 1.0).float().mean().item()
    assert frac_first == pytest.approx(2 / 3, abs=0.03)
    assert (picks == 0.0).sum() == 0  # the empty map is never drawn
    empty = sample_view_maps(torch.zeros(2, 3, 2, 2), g)  # all-zero maps: uniform, no error
    assert empty.shape == (2, 2, 2, 2)


def test_attention_crop_takes_the_padded_box_above_threshold_and_resizes():
    img = torch.arange(2 * 3 * 20 * 20, dtype=torch.float32).reshape(2, 3, 20, 20)
    maps = torch.zeros(2, 1, 20, 20)
    maps[0, 0, 5:8, 10:15] = 1.0
    maps[1, 0, 0:2, 0:2] = 2.0
    maps[1, 0, 3, 3] = 0.5  # below 0.5 * max = 1.0: outside the box
    crops = attention_crop(img, maps, torch.tensor([0.5, 0.5]), padding=0.1)
    # image 0: rows 5..7, cols 10..14 -> padded by 2: rows 3..9 (slice 3:9), cols 8..16 (slice 8:16)
    ref0 = F.interpolate(img[0:1, :, 3:9, 8:16], size=(20, 20), mode="bilinear", align_corners=False)
    ref1 = F.interpolate(img[1:2, :, 0:3, 0:3], size=(20, 20), mode="bilinear", align_corners=False)
    torch.testing.assert_close(crops[0:1], ref0)
    torch.testing.assert_close(crops[1:2], ref1)


def test_attention_drop_zeroes_pixels_above_threshold():
    img = torch.ones(1, 3, 8, 8)
    maps = torch.zeros(1, 1, 8, 8)
    maps[0, 0, 2:4, 2:4] = 1.0
    out = attention_drop(img, maps, torch.tensor([0.3]))
    assert out[0, :, 2:4, 2:4].abs().sum() == 0
    assert out[0, :, 6:, 6:].eq(1).all()


def test_wsdan_views_wrapper_adds_views_only_in_training():
    spec = FeatureSpec(4, 8)
    ctx = BuildContext(in_spec=spec, stages={"s": spec}, num_maps=3)
    agg = make_component("aggregation", "wsdan_views", {"inner": {"name": "knn_graph", "k": 2}}, ctx)
    assert agg.descriptor_dims == agg.inner.descriptor_dims
    inp = AggregationInput(features=torch.randn(2, 4, 4, 4), maps=torch.rand(2, 3, 4, 4), image=torch.randn(2, 3, 32, 32))
    views = agg.train()(inp).extras["views"]
    assert set(views) == {"crop", "drop"} and all(v.shape == (2, 3, 32, 32) and not v.requires_grad
                                                  for v in views.values())
    assert "views" not in agg.eval()(inp).extras
    with pytest.raises(ContractError, match="attention maps"):
        make_component("aggregation", "wsdan_views", {}, BuildContext(in_spec=spec, num_maps=0))
    with pytest.raises(ValueError):
        WsdanViewsConfig(crop_threshold=(0.7, 0.2))


def test_cross_entropy_over_views_with_the_model_views_hook():
    """HashingModel encodes every view of extras["views"] with the same model in training and hands
    "<view>.class_logits" to the losses; cross_entropy averages the raw image and the views."""
    from hashkit.assemble import build_model
    from hashkit.recipe.load import load_recipe

    recipe = load_recipe(Path(__file__).resolve().parent.parent / "recipes" / "gdfnet-demo.toml", {"model.aggregation": {
        "name": "wsdan_views", "inner": {"name": "knn_graph", "k": 3}}})
    model = build_model(recipe, 16, num_classes=10).train()
    x = torch.randn(4, 3, 32, 32)
    labels = F.one_hot(torch.tensor([0, 1, 2, 1]), 10).float()
    out = model(x)
    views = out.extras["views"]
    assert set(views) == {"crop", "drop"}
    for name, images in views.items():
        assert images.shape == x.shape
        sub = model(images, views=False)  # train-mode BN uses batch statistics: same batch, same output
        torch.testing.assert_close(out.extras[f"{name}.class_logits"], sub.class_logits)
        assert f"{name}.codes" in out.extras
    ce = make_component("loss", "cross_entropy", {"views": ["crop", "drop"]})
    res = ce(LossInputs(class_logits=out.class_logits, labels=labels, extras=out.extras))
    y = labels.argmax(1)
    ref = (F.cross_entropy(out.class_logits, y) + F.cross_entropy(out.extras["crop.class_logits"], y)
           + F.cross_entropy(out.extras["drop.class_logits"], y)) / 3
    torch.testing.assert_close(res.value, ref)
    assert set(res.parts) == {"raw", "crop", "drop"}
    res.value.backward()
    # no views in eval mode, and the loss names what is missing
    model.eval()
    assert not any(k.endswith(".class_logits") for k in model(x).extras)
    with pytest.raises(ContractError, match="crop.class_logits"):
        ce(LossInputs(class_logits=out.class_logits.detach(), labels=labels))
