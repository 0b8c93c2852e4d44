"""CHN: the attention zoom against a slow literal transcription of the official saliency sampler, the level
conv blocks, the head, the balanced loss and the smoothed CE against literal references; one training step
against CHN.py's step written out; the composed model against a literal forward on torchvision's ResNet-50;
parameter counts and checkpoints (DSH_Analysis names, the official Lightning checkpoint layout)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

import hashkit
from dsh_reference import (bilinear_align_corners, chn_shapes, demo_training_step, grid_sample_literal,
                           parameter_count, random_state)
from hashkit.assemble import build_losses, build_model, make_component
from hashkit.errors import CheckpointError
from hashkit.interfaces import AggregationInput, BuildContext, FeatureSpec, LossInputs
from hashkit_plugins.aggregation.saliency_zoom import SaliencyZoomConfig, zoom_view

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
NO_WEIGHTS = {"model.backbone.weights": "none"}


# --------------------------------------------------------------------------------------------- attention zoom
def literal_peaks(d: np.ndarray) -> list[tuple[int, int]]:
    """3x3 maxima (-inf outside; on ties the window's first position in row-major order) that are >= the mean."""
    g = d.shape[0]
    peaks = []
    for r in range(g):
        for c in range(g):
            best, where = -math.inf, None
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    rr, cc = r + dr, c + dc
                    v = d[rr, cc] if 0 <= rr < g and 0 <= cc < g else -math.inf
                    if v > best:
                        best, where = v, (rr, cc)
            if where == (r, c) and d[r, c] >= d.mean():
                peaks.append((r, c))
    return peaks


def literal_kernel(theta: float, size: int, x0: int, y0: int) -> np.ndarray:
    """KernelGenerator(size, (x0, y0))(theta): a Gaussian of std theta * size, divided by its maximum."""
    xx, yy = np.meshgrid(np.arange(size), np.arange(size))
    pow2 = (theta * size) ** 2
    kernel = 1.0 / (2 * np.pi * pow2) * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / 2 / pow2)
    return kernel / kernel.max()


def literal_zoom(image: np.ndarray, feature: np.ndarray, mode: int, uniforms: np.ndarray, cfg: SaliencyZoomConfig,
                 size: int) -> np.ndarray:
    """batch_augment(..., 'zoom') for one image (C, H, W), written out from the official description."""
    g, p = cfg.grid_size, cfg.padding
    a = bilinear_align_corners(feature.sum(0), size, size)
    s = bilinear_align_corners(a, g, g)
    d = s / s.max()
    peaks = literal_peaks(d)
    sal = np.full((g, g), cfg.base_ratio)
    if mode == 0:
        chosen = [(r, c, cfg.radius * math.sqrt(d[r, c])) for r, c in peaks]
    elif mode == 1:
        chosen = [(r, c, cfg.radius * math.sqrt(d[r, c])) for r, c in peaks if d[r, c] > uniforms[r * g + c]]
    else:
        scores = [d[r, c] for r, c in peaks]
        r, c = peaks[scores.index(max(scores))]
        chosen = [(r, c, cfg.radius * d[r, c])]
    for r, c, theta in chosen:
        sal = sal + d[r, c] * literal_kernel(theta, g, c, r)
    padded = np.pad(sal, p, mode="edge")
    n = g + 2 * p
    xs = np.array([[(cc - p) / (g - 1.0) for cc in range(n)] for _ in range(n)])
    ys = xs.T
    k = np.arange(2 * p + 1)
    window = np.exp(-4 * np.log(2) * ((k[None, :] - p) ** 2 + (k[:, None] - p) ** 2) / cfg.fwhm**2)

    def conv(m):
        out = np.zeros((g, g))
        for r in range(g):
            for c in range(g):
                out[r, c] = (m[r:r + 2 * p + 1, c:c + 2 * p + 1] * window).sum()
        return out

    weight = conv(padded)
    gx = np.clip(conv(padded * xs) / weight * 2 - 1, -1, 1)
    gy = np.clip(conv(padded * ys) / weight * 2 - 1, -1, 1)
    h, w = image.shape[1:]
    return grid_sample_literal(image, bilinear_align_corners(gx, h, w), bilinear_align_corners(gy, h, w))


@pytest.mark.parametrize("grid,pad,fwhm,zoom_size", [(9, 8, 5.0, "input"), (31, 30, 13.0, "reference")])
def test_zoom_equals_literal_official_sampler(grid, pad, fwhm, zoom_size):
    cfg = SaliencyZoomConfig(grid_size=grid, padding=pad, fwhm=fwhm, zoom_size=zoom_size)
    g = torch.Generator().manual_seed(0)
    images = torch.randn(3, 3, 20, 20, generator=g)
    features = torch.randn(3, 6, 4, 4, generator=g).relu() + 0.01
    modes = torch.tensor([0, 1, 2])
    uniforms = torch.rand(3, grid * grid, generator=g)
    got = zoom_view(images, features, cfg, modes, uniforms)
    size = 224 if zoom_size == "reference" else 20
    for i in range(3):
        ref = literal_zoom(images[i].double().numpy(), features[i].double().numpy(), int(modes[i]),
                           uniforms[i].double().numpy(), cfg, size)
        # float32 implementation vs float64 literal: sampling-grid errors of ~1e-5 move pixels of a noise image
        assert np.abs(got[i].double().numpy() - ref).max() < 1e-3, i


def test_zoom_of_an_all_zero_attention_is_the_uniform_sampler():
    """No peaks: S is constant, every mode samples the same grid (the official code divides by a zero max)."""
    cfg = SaliencyZoomConfig(grid_size=9, padding=8, fwhm=5.0, zoom_size="input")
    images = torch.randn(1, 3, 16, 16).repeat(3, 1, 1, 1)
    out = zoom_view(images, torch.zeros(3, 4, 2, 2), cfg, torch.tensor([0, 1, 2]), torch.rand(3, 81))
    assert torch.isfinite(out).all() and torch.equal(out[0], out[1]) and torch.equal(out[0], out[2])


# ------------------------------------------------------------------------------------------ level conv blocks
def literal_basic_conv(x, block):
    y = F.conv2d(x, block.conv.weight, padding=block.conv.padding)
    bn = block.bn
    y = (y - bn.running_mean[None, :, None, None]) / torch.sqrt(bn.running_var[None, :, None, None] + bn.eps)
    return (y * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]).clamp_min(0)


def test_level_conv_pool_equals_literal_and_bn_momentum():
    specs = {"a": FeatureSpec(6, 4), "b": FeatureSpec(10, 8)}
    torch.manual_seed(0)
    agg = make_component("aggregation", "level_conv_pool", {"stages": ["a", "b"], "hidden": 5, "out": 7},
                         BuildContext(in_spec=specs["b"], stages=specs)).double()
    g = torch.Generator().manual_seed(1)
    stages = {"a": torch.randn(2, 6, 6, 6, generator=g, dtype=torch.float64),
              "b": torch.randn(2, 10, 3, 3, generator=g, dtype=torch.float64)}
    for bnm in agg.modules():
        if isinstance(bnm, torch.nn.BatchNorm2d):
            bnm.running_mean.normal_(generator=g)
            bnm.running_var.uniform_(0.5, 1.5, generator=g)
    agg.eval()
    out = agg(AggregationInput(features=stages["b"], stages=stages))
    for s in ("a", "b"):
        y = literal_basic_conv(literal_basic_conv(stages[s], agg.blocks[s][0]), agg.blocks[s][1])
        expected = torch.stack([torch.stack([y[i, c].max() for c in range(7)]) for i in range(2)])
        assert torch.allclose(out.descriptors[s], expected)
    agg.train()
    before = agg.blocks["a"][0].bn.running_mean.clone()
    agg(AggregationInput(features=stages["b"], stages=stages))
    conv = F.conv2d(stages["a"], agg.blocks["a"][0].conv.weight)
    assert torch.allclose(agg.blocks["a"][0].bn.running_mean, 0.99 * before + 0.01 * conv.mean(dim=(0, 2, 3)))


# ------------------------------------------------------------------------------------------------------ head
def _head(unused=True):
    torch.manual_seed(2)
    dims = {"l2": 4, "l3": 5, "l4": 6}
    return make_component("hash_head", "chn_head", {"hidden": 7, "unused_heads": unused, "unused_classifier_in": 9},
                          BuildContext(code_length=8, num_classes=3, descriptor_dims=dims)).double()


def test_chn_head_equals_literal_and_unused_layers_get_no_gradient():
    head = _head()
    g = torch.Generator().manual_seed(3)
    desc = {k: torch.randn(4, d, generator=g, dtype=torch.float64) for k, d in head.descriptor_dims.items()}
    for m in head.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.normal_(generator=g)
            m.running_var.uniform_(0.5, 1.5, generator=g)
    head.eval()
    out = head(desc)
    x = torch.cat([desc["l2"], desc["l3"], desc["l4"]], 1)
    seq = head.hashing_concat

    def bn1d(v, m):
        return (v - m.running_mean) / torch.sqrt(m.running_var + m.eps) * m.weight + m.bias

    hidden = bn1d(bn1d(x, seq[0]) @ seq[1].weight.t() + seq[1].bias, seq[2])
    hidden = torch.where(hidden > 0, hidden, torch.exp(hidden) - 1)  # ELU
    h = hidden @ seq[4].weight.t() + seq[4].bias
    z = (desc["l4"] @ head.b3.weight.t() + head.b3.bias) @ head.fc.weight.t() + head.fc.bias
    assert torch.allclose(out.logits, h) and torch.allclose(out.class_logits, z)
    assert torch.allclose(out.codes, torch.tanh(h))
    head.train()
    out = head(desc)
    (out.logits.sum() + out.class_logits.sum()).backward()
    assert all(getattr(head, n).weight.grad is None for n in ("b1", "b2", "b_cat", "fc_x"))
    assert head.b3.weight.grad is not None
    assert not hasattr(_head(unused=False), "b_cat")


# --------------------------------------------------------------------------------- balanced loss and smoothed CE
def literal_smooth_ce(logits: torch.Tensor, onehot: torch.Tensor, peak: float) -> torch.Tensor:
    """CHN.py smooth_CE: the labelled class gets ``peak``, the others (1 - peak) / (C - 1)."""
    b, c = logits.shape
    total = 0.0
    for i in range(b):
        logp = logits[i] - torch.logsumexp(logits[i], 0)
        for k in range(c):
            q = peak if onehot[i, k] == 1 else (1 - peak) / (c - 1)
            total = total - q * logp[k]
    return total / b


def test_cross_entropy_view_reductions_and_others_smoothing():
    g = torch.Generator().manual_seed(4)
    z = torch.randn(5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    zv = torch.randn(5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    y = F.one_hot(torch.tensor([0, 2, 5, 5, 1]), 6).float()
    li = LossInputs(class_logits=z, labels=y, extras={"zoom.class_logits": zv})

    def ce(cfg):
        return make_component("loss", "cross_entropy", cfg, BuildContext())(li).value

    chn = ce({"label_smoothing": 0.1, "smoothing_to": "others", "views": ["zoom"], "views_reduce": "mean_logits"})
    literal = literal_smooth_ce((z + zv) / 2, y, 0.9)
    assert torch.allclose(chn.double(), literal, atol=1e-6)
    gz = torch.autograd.grad(chn, z)[0]
    assert torch.allclose(gz.double(), torch.autograd.grad(literal, z)[0], atol=1e-6)
    yi = y.argmax(1)
    fish = ce({"views": ["zoom"], "views_reduce": "sum"})
    assert torch.allclose(fish.double(), F.cross_entropy(z, yi) + F.cross_entropy(zv, yi), atol=1e-6)
    mean = ce({"views": ["zoom"]})
    assert torch.allclose(mean.double(), (F.cross_entropy(z, yi) + F.cross_entropy(zv, yi)) / 2, atol=1e-6)
    smooth_all = ce({"label_smoothing": 0.1})
    assert torch.allclose(smooth_all.double(), F.cross_entropy(z, yi, label_smoothing=0.1), atol=1e-6)


@pytest.mark.parametrize("alpha_param", ["raw", "softplus"])
def test_uncertainty_balance_equals_literal_value_and_gradients(alpha_param):
    loss = make_component("loss", "uncertainty_balance", {
        "terms": [{"name": "proxy_code_mse"}, {"name": "cross_entropy"}], "init": 1.3, "alpha_param": alpha_param,
    }, BuildContext(code_length=6, num_classes=4))
    assert [tuple(p.shape) for p in loss.alpha] == [(1,), (1,)]
    assert torch.allclose(loss.alphas(), torch.tensor([1.3, 1.3]))
    with torch.no_grad():
        loss.alpha[0].add_(0.2)
        loss.alpha[1].sub_(0.4)
    g = torch.Generator().manual_seed(5)
    h = torch.randn(3, 6, generator=g, requires_grad=True)
    z = torch.randn(3, 4, generator=g, requires_grad=True)
    t = torch.randint(0, 2, (3, 6), generator=g).float() * 2 - 1
    y = F.one_hot(torch.tensor([1, 0, 3]), 4).float()
    res = loss(LossInputs(logits=h, class_logits=z, labels=y, protocol={"targets": t}))
    a = torch.cat(list(loss.alpha))
    if alpha_param == "softplus":
        a = torch.log1p(torch.exp(a)) + 1e-6
    l_code, l_cls = ((h - t) ** 2).mean(), F.cross_entropy(z, y.argmax(1))
    literal = l_code / a[0] ** 2 + l_cls / a[1] ** 2 + torch.log(1 + a[0]) + torch.log(1 + a[1])
    assert torch.allclose(res.value, literal)
    got = torch.autograd.grad(res.value, [h, z, *loss.alpha])
    want = torch.autograd.grad(literal, [h, z, *loss.alpha])
    assert all(torch.allclose(x, w, atol=1e-6) for x, w in zip(got, want))
    if alpha_param == "raw":  # d/dα (L/α² + log(1 + α)) = -2L/α³ + 1/(1 + α)
        assert torch.allclose(got[2], -2 * l_code.detach() / a[0].detach() ** 3 + 1 / (1 + a[0].detach()))
    assert set(res.parts) == {"proxy_code_mse", "cross_entropy", "alpha.proxy_code_mse", "alpha.cross_entropy"}
    assert loss.requires == ("logits", "protocol.targets", "class_logits", "labels")


# --------------------------------------------------------------------------------------- one training step
def test_training_step_equals_literal_chn_step():
    step = demo_training_step(RECIPES / "chn-demo.toml", [1, 1, 4, 9], data_seed=6, forward_seed=21)
    model, losses, ref, ref_losses = step.model, step.losses, step.ref, step.ref_losses
    x, labels, targets, res = step.x, step.labels, step.targets, step.result

    def literal_forward(images):
        stages = ref.backbone(images, ["stage2", "stage3", "stage4"])
        desc = {s: ref.aggregation.inner.blocks[s](stages[s]).amax(dim=(2, 3)) for s in stages}
        head = ref.hash_head(desc)
        return stages["stage4"], head.logits, head.class_logits

    torch.manual_seed(21)
    f3, h, y33 = literal_forward(x)
    cfg = ref.aggregation.cfg
    modes, uniforms = torch.randint(0, 3, (4,)), torch.rand(4, cfg.grid_size ** 2)
    zoom = torch.stack([torch.from_numpy(literal_zoom(x[i].double().numpy(), f3[i].detach().double().numpy(),
                                                      int(modes[i]), uniforms[i].double().numpy(), cfg, 32)).float()
                        for i in range(4)])
    _, _, y_zoom = literal_forward(zoom)
    alpha1, alpha2 = ref_losses.losses[0].alpha
    loss_code = F.mse_loss(h, targets)
    loss_y = literal_smooth_ce((y33 + y_zoom) / 2, labels, 0.9)
    literal = loss_code / alpha1**2 + loss_y / alpha2**2 + torch.log(alpha1 + 1) + torch.log(alpha2 + 1)
    literal.sum().backward()
    assert torch.allclose(res.value, literal.sum(), atol=1e-5)
    for (name, p), (_, q) in zip(model.named_parameters(), ref.named_parameters()):
        assert (p.grad is None) == (q.grad is None), name
        if p.grad is not None:
            assert torch.allclose(p.grad, q.grad, atol=1e-5), name
    for p, q in zip(losses.parameters(), ref_losses.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-5)


# ---------------------------------------------------------------------------- composed model, counts, checkpoints
@pytest.fixture(scope="module")
def chn12():
    torch.manual_seed(0)
    recipe = hashkit.load_recipe(RECIPES / "chn.toml", NO_WEIGHTS)
    model = build_model(recipe, 12, 190)
    proto = make_component("training_protocol", "proxy_codes", {}, BuildContext(code_length=12))
    return model, build_losses(recipe, model, proto, 12, 190)


@pytest.fixture(scope="module")
def chn_state():
    shapes = chn_shapes(12, 190)
    assert len(shapes) == 382
    return random_state(shapes)


@pytest.mark.parametrize("L,expected", [(12, 41_560_290), (48, 41_806_926)])
def test_parameter_counts_equal_the_reference(chn12, L, expected):
    model, losses = chn12
    head = make_component("hash_head", "chn_head", {}, BuildContext(
        code_length=L, num_classes=190, descriptor_dims=dict(model.aggregation.descriptor_dims)))
    body = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("hash_head."))
    alphas = sum(p.numel() for p in losses.parameters())
    assert body + sum(p.numel() for p in head.parameters()) + alphas == expected == parameter_count(chn_shapes(L, 190))


def test_reference_checkpoint_loads_one_to_one_and_forward_equals_literal(chn12, chn_state):
    from hashkit_plugins.reference_checkpoints import chn

    model, losses = chn12
    state = chn_state
    assert chn.load_checkpoint(model, losses, state) == []
    back = chn.to_reference(model, losses)
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)
    tv = torchvision.models.resnet50(weights=None)
    tv.fc = torch.nn.Identity()
    tv.load_state_dict({k[len("backbone."):]: v for k, v in state.items()
                        if k.startswith("backbone.") and k.split(".")[1] in
                        {"conv1", "bn1", "layer1", "layer2", "layer3", "layer4"}})
    tv.eval()
    model.eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(7))

    def basic(v, p):
        y = F.conv2d(v, state[f"{p}.conv.weight"], padding=state[f"{p}.conv.weight"].shape[-1] // 2)
        y = (y - state[f"{p}.bn.running_mean"][None, :, None, None]) / torch.sqrt(
            state[f"{p}.bn.running_var"][None, :, None, None] + 1e-5)
        return (y * state[f"{p}.bn.weight"][None, :, None, None] + state[f"{p}.bn.bias"][None, :, None, None]).relu()

    def bn1d(v, p):
        return (v - state[f"{p}.running_mean"]) / torch.sqrt(state[f"{p}.running_var"] + 1e-5) * state[
            f"{p}.weight"] + state[f"{p}.bias"]

    def lin(v, p):
        return v @ state[f"{p}.weight"].t() + state[f"{p}.bias"]

    with torch.no_grad():
        f1 = tv.layer2(tv.layer1(tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))))
        f2 = tv.layer3(f1)
        f3 = tv.layer4(f2)
        gs = [basic(basic(f, f"backbone.conv_block{i}.0"), f"backbone.conv_block{i}.1").amax(dim=(2, 3))
              for i, f in ((1, f1), (2, f2), (3, f3))]
        hc = "backbone.hashing_concat"
        h = lin(F.elu(bn1d(lin(bn1d(torch.cat(gs, 1), f"{hc}.0"), f"{hc}.1"), f"{hc}.2")), f"{hc}.4")
        y33 = lin(lin(gs[2], "backbone.b3"), "backbone.fc")
        out = model(x)
    assert torch.allclose(out.logits, h, atol=1e-4) and torch.allclose(out.class_logits, y33, atol=1e-4)
    assert torch.equal(torch.cat(list(losses.losses[0].alpha)), torch.cat([state["alpha1"], state["alpha2"]]))


def test_official_lightning_checkpoint_and_errors(chn12, chn_state, tmp_path):
    from hashkit_plugins.reference_checkpoints import chn

    model, losses = chn12
    path = tmp_path / "epoch=9-val_mAP=0.8000.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in chn_state.items()}, "epoch": 9}, path)
    assert chn.load_checkpoint(model, losses, path) == []
    assert torch.equal(model.aggregation.inner.blocks["layer3"][1].conv.weight,
                       chn_state["backbone.conv_block2.1.conv.weight"])
    with pytest.raises(CheckpointError, match="alpha2"):
        chn.load_checkpoint(model, losses, {k: v for k, v in chn_state.items() if k != "alpha2"})
    with pytest.raises(CheckpointError, match="uncertainty_balance|UncertaintyBalance"):
        chn.load_checkpoint(model, None, chn_state)


def test_checkpoint_without_the_unused_layers():
    from hashkit_plugins.reference_checkpoints import chn

    recipe = hashkit.load_recipe(RECIPES / "chn.toml", {**NO_WEIGHTS, "model.hash_head.unused_heads": False,
                                                         "model.backbone.name": "resnet18"})
    # resnet18 keeps the test small: the map is the same, only the trunk's widths differ
    model = build_model(recipe, 12, 5)
    proto = make_component("training_protocol", "proxy_codes", {}, BuildContext(code_length=12))
    losses = build_losses(recipe, model, proto, 12, 5)
    state = chn.to_reference(model, losses)
    assert "backbone.b_cat.weight" not in state and "backbone.b3.weight" in state and "alpha2" in state
    extra = {"backbone.b1.weight": torch.zeros(12, 1024), "backbone.fc_x.bias": torch.zeros(5)}
    assert sorted(chn.load_checkpoint(model, losses, state | extra)) == sorted(extra)
