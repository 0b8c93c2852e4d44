"""DAGF attention components: shapes, differentiability, literal references, MAX-mask vs brute force."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hashkit.assemble import make_component
from hashkit.interfaces import BuildContext, FeatureSpec
from hashkit.model.hashing_model import HashingModel
from hashkit.testing import check_component
from hashkit_plugins.attention.max_mask import max_mask
from hashkit_plugins.attention.multiscale import multiscale_filter

NAMES = ["spatial_attention", "channel_attention", "multiscale", "max_mask"]


def _ctx(c: int) -> BuildContext:
    return BuildContext(in_spec=FeatureSpec(c, 8))


@pytest.mark.parametrize("name", NAMES)
def test_conformance(name):
    check_component("attention", name)


@pytest.mark.parametrize("name,params", [
    ("spatial_attention", {"reduction": 2}), ("spatial_attention", {"form": "plain", "emit_map": False}),
    ("channel_attention", {}), ("channel_attention", {"weight": "softplus"}),
    ("multiscale", {"combine": "mean"}), ("multiscale", {"combine": "max"}),
])
def test_shape_kept_and_differentiable(name, params):
    att = make_component("attention", name, params, _ctx(6))
    x = torch.randn(3, 6, 5, 7, requires_grad=True)
    out = att(x)
    assert out.features.shape == x.shape
    (out.features ** 2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    params_with_grad = [p for p in att.parameters()]
    assert all(p.grad is not None for p in params_with_grad)


def test_spatial_attention_matches_literal_formula():
    att = make_component("attention", "spatial_attention", {"reduction": 2}, _ctx(4))
    x = torch.randn(2, 4, 3, 3)
    with torch.no_grad():
        out = att(x)
    fc1, fc2 = att.evaluator[0].requires_grad_(False), att.evaluator[2].requires_grad_(False)
    for b in range(2):
        g = [sum(float(x[b, c, h, w]) for h in range(3) for w in range(3)) / 9 for c in range(4)]
        hidden = [max(0.0, float(fc1.bias[i]) + sum(float(fc1.weight[i, c]) * g[c] for c in range(4)))
                  for i in range(2)]
        e = [float(fc2.bias[c]) + sum(float(fc2.weight[c, i]) * hidden[i] for i in range(2)) for c in range(4)]
        for h in range(3):
            for w in range(3):
                z = sum(e[c] * float(x[b, c, h, w]) for c in range(4)) / math.sqrt(4)
                s = 1 / (1 + math.exp(-z))
                assert out.maps[b, 0, h, w].item() == pytest.approx(s, abs=1e-5)
                for c in range(4):
                    assert out.features[b, c, h, w].item() == pytest.approx(float(x[b, c, h, w]) * (1 + s), abs=1e-5)


@pytest.mark.parametrize("weight", ["sigmoid2", "softplus"])
def test_channel_attention_is_identity_at_init_and_scales_channels(weight):
    att = make_component("attention", "channel_attention", {"weight": weight}, _ctx(5))
    x = torch.randn(2, 5, 3, 4)
    assert torch.allclose(att(x).features, x, atol=1e-6)
    with torch.no_grad():
        att.v.copy_(torch.linspace(-2, 2, 5))
    a = att.weights()
    assert (a > 0).all()
    assert torch.allclose(att(x).features, x * a.view(1, 5, 1, 1))


def _brute_force_max_mask(x: torch.Tensor, rule: str = "peaks") -> torch.Tensor:
    b, c, h, w = x.shape
    mask = torch.zeros(b, 1, h, w)
    for i in range(b):
        for ch in range(c):
            best, where = None, None
            for r in range(h):  # row-major scan, the first maximum wins
                for q in range(w):
                    v = float(x[i, ch, r, q])
                    if best is None or v > best:
                        best, where = v, (r, q)
            if rule == "first_index" or best > 0:  # "peaks": a channel without a positive value has no peak
                mask[i, 0, where[0], where[1]] = 1.0
        if rule == "peaks" and mask[i].sum() == 0:
            mask[i] = 1.0  # nothing to select: every location is kept
    return mask


@settings(max_examples=40, deadline=None)
@given(b=st.integers(1, 2), c=st.integers(1, 6), h=st.integers(1, 5), w=st.integers(1, 5),
       levels=st.integers(2, 4), seed=st.integers(0, 10_000), rule=st.sampled_from(["peaks", "first_index"]))
def test_max_mask_equals_brute_force(b, c, h, w, levels, seed, rule):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(-1, levels, (b, c, h, w), generator=g).float()  # few levels: ties, zero and negative channels
    assert torch.equal(max_mask(x, rule), _brute_force_max_mask(x, rule))


def test_max_mask_zero_channel_does_not_keep_the_corner():
    x = torch.zeros(1, 3, 4, 4)
    x[0, 1, 2, 3] = 2.0  # channel 0 is zero everywhere (a dead ReLU channel), channel 2 is negative
    x[0, 2] = -1.0
    x[0, 2, 1, 1] = -0.5
    expected = torch.zeros(1, 1, 4, 4)
    expected[0, 0, 2, 3] = 1.0
    assert torch.equal(max_mask(x), expected)
    # the literal rule: the zero channel votes for (0, 0), the negative one for its maximum at (1, 1)
    expected[0, 0, 0, 0] = expected[0, 0, 1, 1] = 1.0
    assert torch.equal(max_mask(x, "first_index"), expected)
    att = make_component("attention", "max_mask", {"rule": "first_index", "emit_maps": True}, _ctx(3))
    assert torch.equal(att(x).maps, expected)


def test_max_mask_peaks_from_the_first_group():
    x = torch.zeros(1, 4, 5, 5)
    x[0, 0, 2, 2] = 1.0  # group 0 (unfiltered): peak at (2, 2)
    x[0, 2:, 1:4, 1:4] = 1.0  # group 1 (its 3x3 max filter): a plateau whose first index is (1, 1)
    att = make_component("attention", "max_mask", {"groups": 2, "emit_maps": True, "peaks_from": "first_group"},
                         _ctx(4))
    maps = att(x).maps
    assert maps.shape == (1, 2, 5, 5) and maps.sum() == 2 and maps[0, 0, 2, 2] == maps[0, 1, 2, 2] == 1.0
    own = make_component("attention", "max_mask", {"groups": 2, "emit_maps": True}, _ctx(4))(x).maps
    assert own[0, 1, 1, 1] == 1.0 and own[0, 1].sum() == 1


def test_max_mask_attention_groups_mask_each_group_separately():
    att = make_component("attention", "max_mask", {"groups": 2, "emit_maps": True}, _ctx(6))
    x = torch.rand(2, 6, 4, 4, requires_grad=True)
    out = att(x)
    m0, m1 = _brute_force_max_mask(x[:, :3].detach()), _brute_force_max_mask(x[:, 3:].detach())
    assert torch.equal(out.maps, torch.cat([m0, m1], dim=1))
    assert torch.equal(out.features.detach(), torch.cat([x[:, :3] * m0, x[:, 3:] * m1], dim=1).detach())
    out.features.sum().backward()
    assert torch.equal(x.grad, torch.cat([m0.expand(-1, 3, -1, -1), m1.expand(-1, 3, -1, -1)], dim=1))


def test_multiscale_equals_brute_force_max_filter():
    x = torch.randn(1, 2, 5, 6)
    ys = multiscale_filter(x, (1, 3, 5))
    assert torch.equal(ys[0], x)
    for y, k in zip(ys[1:], (3, 5)):
        r = k // 2
        for c in range(2):
            for i in range(5):
                for j in range(6):
                    window = x[0, c, max(0, i - r):i + r + 1, max(0, j - r):j + r + 1]
                    assert y[0, c, i, j] == window.max()
    att = make_component("attention", "multiscale", {}, _ctx(2))
    assert att.out_channels == 6 and torch.equal(att(x).features, torch.cat(ys, dim=1))


@pytest.mark.parametrize("order", [("spatial_attention", "channel_attention"),
                                   ("channel_attention", "spatial_attention")])
def test_cascade_in_either_order_builds_and_trains(order):
    backbone = make_component("backbone", "tiny_cnn", {"width": 4, "until": "stage3"})
    spec = backbone.stage_specs["stage3"]
    atts = [make_component("attention", n, {}, BuildContext(in_spec=spec)) for n in order]
    agg = make_component("aggregation", "gem", {"scales": [1, 3], "mask": "max"}, BuildContext(in_spec=spec))
    head = make_component("hash_head", "linear", {}, BuildContext(code_length=8, descriptor_dims=agg.descriptor_dims))
    model = HashingModel(backbone, agg, head, atts, tap="stage3")
    out = model(torch.randn(2, 3, 32, 32))
    assert out.descriptor.shape == (2, 16) and out.codes.shape == (2, 8)
    (out.codes.sum() + out.descriptor.sum()).backward()
    assert all(p.grad is not None for a in model.attention for p in a.parameters())


def test_multiscale_and_max_mask_compose_in_the_cascade_before_gap():
    spec = FeatureSpec(4, 8)
    ms = make_component("attention", "multiscale", {"kernels": [1, 3]}, BuildContext(in_spec=spec))
    mm = make_component("attention", "max_mask", {"groups": 2}, BuildContext(in_spec=FeatureSpec(ms.out_channels, 8)))
    x = torch.rand(2, 4, 5, 5)
    feats = mm(ms(x).features).features
    assert feats.shape == (2, 8, 5, 5)
    # MAX-mask keeps every channel's maximum, so GMP after it is unchanged
    assert torch.equal(feats.amax(dim=(2, 3)), torch.cat(multiscale_filter(x, (1, 3)), dim=1).amax(dim=(2, 3)))
