"""Global descriptor aggregations: GeM vs GAP / GMP, masked pooling, SPoC, R-MAC, scales, whitening."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hashkit.assemble import make_component
from hashkit.interfaces import AggregationInput, BuildContext, FeatureSpec
from hashkit.testing import check_component
from hashkit_plugins.aggregation.rmac import rmac_regions
from hashkit_plugins.aggregation.spoc import center_prior
from hashkit_plugins.attention.max_mask import max_mask


def _agg(name, params, c=5):
    return make_component("aggregation", name, params, BuildContext(in_spec=FeatureSpec(c, 8)))


def _run(agg, x):
    return agg(AggregationInput(features=x)).descriptors["global"]


@pytest.mark.parametrize("name", ["gem", "spoc", "rmac"])
def test_conformance(name):
    check_component("aggregation", name)


def test_gem_p1_equals_gap():
    x = torch.rand(3, 5, 4, 6) + 0.01
    gem = _agg("gem", {"p": 1.0, "normalize": False})
    gap = _agg("gap", {})
    assert torch.allclose(_run(gem, x), _run(gap, x), atol=1e-6)


def test_gem_tends_to_gmp_for_large_p():
    x = torch.rand(3, 5, 4, 6, dtype=torch.float64) + 0.01
    gmp = _run(_agg("gmp", {}), x)
    errors = []
    for p in (2.0, 8.0, 32.0, 128.0):
        gem = _agg("gem", {"p": p, "normalize": False}).double()
        with torch.no_grad():
            d = _run(gem, x)
        assert (d <= gmp + 1e-9).all()  # power mean never exceeds the max
        errors.append(float((gmp - d).abs().max()))
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 0.05 * float(gmp.min())  # (mean x^p)^(1/p) >= max * (1/HW)^(1/p)


def test_gem_p_is_learnable():
    gem = _agg("gem", {})
    x = torch.rand(2, 5, 3, 3)
    _run(gem, x).sum().backward()
    assert gem.p.grad is not None and torch.isfinite(gem.p.grad)
    assert not any(n == "p" for n, _ in _agg("gem", {"learn_p": False}).named_parameters())


@pytest.mark.parametrize("rule", ["peaks", "first_index"])
def test_masked_multiscale_gem_matches_literal_reference(rule):
    torch.manual_seed(0)
    x = torch.rand(2, 3, 4, 5)
    x[1, 2] = 0.0  # a dead channel: no vote under "peaks", votes for (0, 0) under "first_index"
    p = 3.0
    agg = _agg("gem", {"scales": [1, 3], "mask": "max", "mask_rule": rule, "p": p, "normalize": False}, c=3)
    got = _run(agg, x)
    expected = torch.zeros(2, 3)
    for k in (1, 3):
        y = x if k == 1 else F.max_pool2d(x, k, 1, k // 2)
        source = x if rule == "peaks" else y  # "peaks": the unfiltered map's peaks for every scale
        for b in range(2):
            kept = set()
            for c in range(3):
                flat = [float(v) for v in source[b, c].flatten()]
                if rule == "first_index" or max(flat) > 0:
                    kept.add(flat.index(max(flat)))
            for c in range(3):
                vals = [float(y[b, c].flatten()[i]) for i in sorted(kept)]
                expected[b, c] += (sum(max(v, 1e-6) ** p for v in vals) / len(vals)) ** (1 / p) / 2
    assert torch.allclose(got, expected, atol=1e-5)


def test_scale_windows_are_centred_on_the_peaks():
    # one peak at (3, 3) in a 7x7 map; channel 1 tells where the 5x5 window was pooled
    x = torch.full((1, 2, 7, 7), 0.1)
    x[0, 0, 3, 3] = 1.0
    x[0, 1, 5, 5] = 0.7  # inside the 5x5 window centred on (3, 3), outside the one centred on (1, 1)
    x[0, 1, 0, 0] = 0.6  # inside the window centred on (1, 1) only
    x[0, 1, 6, 6] = 0.9  # channel 1's own peak, far from both windows
    centred = _agg("gem", {"scales": [5], "mask": "max", "p": 1.0, "normalize": False}, c=2)
    literal = _agg("gem", {"scales": [5], "mask": "max", "mask_rule": "first_index", "p": 1.0, "normalize": False},
                   c=2)
    y = F.max_pool2d(x, 5, 1, 2)
    # peaks at (3, 3) and (6, 6): the mean of the filtered map there
    assert torch.allclose(_run(centred, x), (y[0, :, 3, 3] + y[0, :, 6, 6])[None] / 2)
    assert torch.allclose(_run(centred, x)[0, 1], torch.tensor((0.7 + 0.9) / 2))
    # the literal rule keeps the plateaus' top-left corners (1, 1) and (4, 4)
    assert max_mask(y, "first_index")[0, 0].nonzero().tolist() == [[1, 1], [4, 4]]
    assert torch.allclose(_run(literal, x), (y[0, :, 1, 1] + y[0, :, 4, 4])[None] / 2)
    assert torch.allclose(_run(literal, x)[0, 1], torch.tensor((0.6 + 0.9) / 2))


def test_whitening_is_identity_at_init_and_learnable():
    x = torch.rand(2, 5, 3, 3)
    plain = _run(_agg("gem", {}), x)
    wh = _agg("gem", {"whitening": True})
    assert torch.allclose(_run(wh, x), plain, atol=1e-6)
    assert torch.allclose(plain.norm(dim=1), torch.ones(2))
    _run(wh, x)[:, 0].sum().backward()
    assert wh.whiten.weight.grad is not None


def test_spoc_matches_literal_reference():
    x = torch.rand(2, 3, 4, 6)
    got = _run(_agg("spoc", {"normalize": False}, c=3), x)
    sigma = 2 / 3
    expected = torch.zeros(2, 3)
    for i in range(4):
        for j in range(6):
            a = math.exp(-((i - 1.5) ** 2 + (j - 2.5) ** 2) / (2 * sigma ** 2))
            expected += a * x[:, :, i, j]
    assert torch.allclose(got, expected, atol=1e-5)
    assert center_prior(4, 6)[1:3, 2:4].min() == center_prior(4, 6).max()
    no_prior = _run(_agg("spoc", {"normalize": False, "center_prior": False}, c=3), x)
    assert torch.allclose(no_prior, x.sum(dim=(2, 3)), atol=1e-5)


def test_rmac_regions_and_value_match_literal_reference():
    regions = rmac_regions(7, 7, levels=3)
    assert regions[0] == (0, 0, 7, 7)
    assert sorted({r[2] for r in regions[1:]}) == [3, 4, 7]  # sides floor(2*7/(l+1)) for l = 1, 2, 3
    assert sum(1 for r in regions if r[2] == 4) == 4 and sum(1 for r in regions if r[2] == 3) == 9
    wide = rmac_regions(6, 10, levels=1)
    assert all(r[0] + r[2] <= 6 and r[1] + r[3] <= 10 for r in wide) and len(wide) > 2
    x = torch.rand(2, 3, 7, 7)
    got = _run(_agg("rmac", {"normalize": False}, c=3), x)
    expected = torch.zeros(2, 3)
    for top, left, h, w in regions:
        v = x[:, :, top:top + h, left:left + w].amax(dim=(2, 3))
        expected += v / v.norm(dim=1, keepdim=True)
    assert torch.allclose(got, expected, atol=1e-5)


def test_rmac_mask_ignores_regions_without_kept_locations():
    x = torch.zeros(1, 2, 4, 4)
    x[0, 0, 0, 0] = 5.0
    x[0, 1, 0, 1] = 3.0
    x = x + 0.1 * torch.rand(1, 2, 4, 4)
    agg = _agg("rmac", {"normalize": False, "mask": "max", "levels": 2}, c=2)
    m = max_mask(x)
    expected = torch.zeros(1, 2)
    for top, left, h, w in rmac_regions(4, 4, 2):
        mm = m[:, :, top:top + h, left:left + w]
        if mm.sum() == 0:
            continue
        v = x[:, :, top:top + h, left:left + w].masked_fill(mm == 0, -1e9).amax(dim=(2, 3))
        expected += v / v.norm(dim=1, keepdim=True)
    assert torch.allclose(_run(agg, x), expected, atol=1e-5)
