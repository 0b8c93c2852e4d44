"""DPAH and DCDH: the Gaussian-margin layer, the sigmoid-code regularisers and the dual classwise loss against
slow literal transcriptions of the reference code's formulas (values and gradients), the head options, the
centres' optimiser membership, parameter counts and reference checkpoints (names and shapes from the specs)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision

import hashkit
from dsh_reference import dcdh_shapes, dpah_shapes, parameter_count, random_state
from hashkit.assemble import build_losses, build_model, make_component
from hashkit.codes.binarize import binarize
from hashkit.interfaces import BuildContext, LossInputs
from hashkit.training.optim import build_optimizer

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
NO_WEIGHTS = {"model.backbone.weights": "none"}
UNUSED_FC = 2048 * 1000 + 1000  # the reference ResNet-50's 1000-way fc, loaded and dropped


# ------------------------------------------------------------------------------------------- Gaussian margin
def literal_sw_loss(h, y, mu, sigma, margin, lam=0.01):
    """DPAH.py: SW_layer (margin logits, likelihood term) + CrossEntropyLoss, one sample and class at a time."""
    b, bits = h.shape
    classes = mu.shape[1]
    ce, lkd = 0.0, 0.0
    for i in range(b):
        logits = []
        for c in range(classes):
            d = sum((h[i, k] - mu[k, c]) ** 2 / max(float(sigma[k, c]), 1e-9) for k in range(bits))
            det = math.prod(float(sigma[k, c]) for k in range(bits))
            logdet = math.log(max(1e-9, det ** -0.5))
            logits.append(-0.5 * d * (1 + margin if c == y[i] else 1) + logdet)
            if c == y[i]:
                lkd = lkd + 0.5 * d - logdet
        z = torch.stack(logits)
        ce = ce - (z[y[i]] - torch.logsumexp(z, 0))
    return ce / b + lam * lkd / b


@pytest.mark.parametrize("learn_variance", [False, True])
def test_gaussian_margin_equals_literal_value_and_gradients(learn_variance):
    torch.manual_seed(0)
    loss = make_component("loss", "gaussian_margin", {"learn_variance": learn_variance},
                          BuildContext(code_length=5, num_classes=4)).double()
    assert loss.sigma.requires_grad == learn_variance and torch.equal(loss.sigma, torch.ones(5, 4).double())
    if learn_variance:
        with torch.no_grad():
            loss.sigma.uniform_(0.5, 1.5)
    g = torch.Generator().manual_seed(1)
    u = torch.randn(6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 3, 3, 1, 2, 0])
    res = loss(LossInputs(logits=u, labels=F.one_hot(y, 4).double()))
    mu = loss.mu.detach().clone().requires_grad_()
    literal = literal_sw_loss(torch.sigmoid(u), y.tolist(), mu, loss.sigma.detach(), 0.1)
    assert torch.allclose(res.value.double(), literal, atol=1e-6)
    gu, gmu = torch.autograd.grad(res.value, [u, loss.mu])
    wu, wmu = torch.autograd.grad(literal, [u, mu])
    assert torch.allclose(gu.double(), wu, atol=1e-6) and torch.allclose(gmu.double(), wmu, atol=1e-6)
    assert res.parts["margin"] == pytest.approx(0.1) and int(loss.calls) == 1


def test_margin_schedule_counts_training_calls():
    loss = make_component("loss", "gaussian_margin", {}, BuildContext(code_length=4, num_classes=3))
    inputs = LossInputs(logits=torch.randn(2, 4), labels=F.one_hot(torch.tensor([0, 2]), 3).float())
    loss.calls.fill_(4997)
    assert loss(inputs).parts["margin"] == pytest.approx(0.1) and int(loss.calls) == 4998
    assert loss(inputs).parts["margin"] == pytest.approx(0.2) and int(loss.calls) == 4999  # from call 4,999 on
    loss.calls.fill_(9998)
    assert loss(inputs).parts["margin"] == pytest.approx(0.2)  # capped at margin_max
    loss.eval()
    loss(inputs)
    assert int(loss.calls) == 9999  # evaluation calls do not count
    assert {"calls", "margin", "mu", "sigma"} <= set(loss.state_dict())


def test_gaussian_means_init():
    torch.manual_seed(0)
    loss = make_component("loss", "gaussian_margin", {}, BuildContext(code_length=12, num_classes=3000))
    assert loss.mu.shape == (12, 3000)
    assert abs(loss.mu.std().item() - math.sqrt(2 / 12)) < 0.01  # kaiming normal, fan_out = L


# ---------------------------------------------------------------------------------- sigmoid-code regularisers
def test_sigmoid_code_regularizers_equal_literal():
    g = torch.Generator().manual_seed(2)
    u = (torch.randn(4, 6, generator=g, dtype=torch.float64) * 8).requires_grad_()
    with torch.no_grad():
        u[0, 0], u[1, 1], u[2, 2] = 10.0, -10.5, 13.0  # exactly at the threshold: no penalty
    loss = make_component("loss", "sigmoid_code_regularizers", {}, BuildContext())
    res = loss(LossInputs(logits=u))
    h = torch.sigmoid(u)
    b, bits = u.shape
    balance = sum((sum(h[i, k] for k in range(bits)) / bits - 0.5) ** 2 for i in range(b)) / (2 * b)
    push = -sum((h[i, k] - 0.5) ** 2 for i in range(b) for k in range(bits)) / (2 * b * bits)
    rng = 0.0
    for i in range(b):
        for k in range(bits):
            if u[i, k] > 10:
                rng = rng + (u[i, k] - 2) ** 2
            elif u[i, k] < -10:
                rng = rng + (u[i, k] + 2) ** 2
    literal = balance + push + 0.01 * rng / (4 * b)
    assert torch.allclose(res.value.double(), literal, atol=1e-6)
    assert res.parts["range"].item() == pytest.approx(float(rng.detach()) / (4 * b), rel=1e-6)
    assert torch.allclose(torch.autograd.grad(res.value, u)[0].double(), torch.autograd.grad(literal, u)[0],
                          atol=1e-6)


# ------------------------------------------------------------------------------------------------ head options
def test_linear_head_init_sigmoid_codes_and_batch_norm():
    torch.manual_seed(3)
    ctx = BuildContext(code_length=48, descriptor_dims={"global": 2048})
    head = make_component("hash_head", "linear", {"init_std": 0.01, "activation": "sigmoid"}, ctx)
    w = head.hash[0].weight
    assert abs(w.std().item() - 0.01) < 5e-4 and torch.equal(head.hash[0].bias, torch.zeros(48))
    u = torch.tensor([[0.0, 1e-9, -3.0, 2.0]])
    codes = 2 * torch.sigmoid(u) - 1
    assert torch.equal(binarize(codes, zero_to="zero"), torch.tensor([[0.0, 0.0, -1.0, 1.0]]))  # sign(σ(u) - ½)
    out = head({"global": torch.randn(3, 2048)})
    assert torch.allclose(out.codes, 2 * torch.sigmoid(out.logits) - 1) and out.codes.abs().max() <= 1
    bn_head = make_component("hash_head", "linear", {"batch_norm": True}, ctx)
    assert isinstance(bn_head.hash[1], torch.nn.BatchNorm1d) and len(bn_head.hash) == 2


# ------------------------------------------------------------------------------------------- dual classwise
def literal_dcdh(u, y, centers, sigma=0.25, inner=0.1, eta=0.01):
    """DCDH.py DualClasswiseLoss + its quantisation step, written out per sample, class and bit."""
    b, bits = u.shape
    classes = centers.shape[0]
    l1 = 0.0
    for i in range(b):
        e = [torch.exp(-0.5 * sigma * ((u[i] - centers[k]) ** 2).sum()) for k in range(classes)]
        l1 = l1 - torch.log(e[y[i]] / (sum(e) + 1e-6) + 1e-6)
    l1 = l1 / b
    l2 = 0.0
    for k in range(classes):
        for j in range(classes):
            theta = 0.0 if k == j else 0.5 * bits * F.cosine_similarity(centers[k], centers[j], dim=0)
            theta = torch.as_tensor(theta, dtype=u.dtype)
            l2 = l2 + torch.log(1 + torch.exp(-theta.abs())) + theta.clamp_min(0)
    l2 = l2 / (classes * (classes - 1))
    signs = torch.sign(u.detach())
    target = torch.zeros_like(u)
    for i in range(b):
        members = [j for j in range(b) if y[j] == y[i]]
        mean_sign = sum(signs[j] for j in members) / len(members)
        target[i] = torch.sign(mean_sign + eta * u[i].detach())
    lq = ((u - target) ** 2).sum() / b
    return l1 + inner * l2 + eta * lq


@pytest.mark.parametrize("learn", [False, True])
def test_dual_classwise_equals_literal_value_and_gradients(learn):
    torch.manual_seed(4)
    loss = make_component("loss", "dual_classwise", {"learn_centers": learn},
                          BuildContext(code_length=12, num_classes=5)).double()
    assert loss.centers.requires_grad == learn and loss.centers.shape == (5, 12)
    g = torch.Generator().manual_seed(5)
    u = (torch.randn(7, 12, generator=g, dtype=torch.float64) * 2).requires_grad_()
    y = torch.tensor([0, 0, 0, 2, 4, 4, 1])
    res = loss(LossInputs(logits=u, labels=F.one_hot(y, 5).double()))
    centers = loss.centers.detach().clone().requires_grad_(learn)
    literal = literal_dcdh(u, y.tolist(), centers)
    assert torch.allclose(res.value.double(), literal, atol=1e-6)
    wanted = [u, loss.centers] if learn else [u]
    got = torch.autograd.grad(res.value, wanted)
    want = torch.autograd.grad(literal, [u, centers] if learn else [u])
    assert all(torch.allclose(a.double(), w, atol=1e-6) for a, w in zip(got, want))
    off = make_component("loss", "dual_classwise", {"exclude_diagonal": True},
                         BuildContext(code_length=12, num_classes=5)).double()
    off.load_state_dict(loss.state_dict())
    gap = res.value - off(LossInputs(logits=u, labels=F.one_hot(y, 5).double())).value
    assert gap.item() == pytest.approx(0.1 * 5 * math.log(2) / 20, rel=1e-6)  # the C diagonal log 2 terms


def test_regression_targets_by_hand():
    from hashkit_plugins.losses.dual_classwise import regression_targets

    u = torch.tensor([[0.5, -0.2], [0.3, 0.4], [-0.1, -0.3], [-0.7, 0.2], [0.6, -0.8], [-0.4, 0.9]])
    y = F.one_hot(torch.tensor([0, 0, 0, 1, 2, 2]), 3).float()
    expected = torch.tensor([
        [1.0, -1.0], [1.0, -1.0], [1.0, -1.0],  # class 0: majority (+, -) over three samples
        [-1.0, 1.0],                              # class 1 alone: its own signs
        [1.0, -1.0], [-1.0, 1.0],                 # class 2: 1 : 1 ties on both bits, broken by sign(u)
    ])
    assert torch.equal(regression_targets(u, y, 0.01), expected)


def test_centres_stay_out_of_the_optimiser_unless_learned():
    for learn in (False, True):
        recipe = hashkit.load_recipe(RECIPES / "dcdh-demo.toml", {"losses[0].learn_centers": learn})
        torch.manual_seed(0)
        model = build_model(recipe, 12, 10)
        losses = build_losses(recipe, model, make_component("training_protocol", "sampled_rounds", {}), 12, 10)
        opt = build_optimizer([*model.named_parameters(), *(("losses." + n, p) for n, p in losses.named_parameters())],
                              recipe.optimizer)
        centers = losses.losses[0].centers
        before = centers.detach().clone()
        in_optimizer = any(p is centers for group in opt.param_groups for p in group["params"])
        out = model.train()(torch.randn(4, 3, 32, 32))
        losses(LossInputs(logits=out.logits, labels=F.one_hot(torch.tensor([0, 1, 1, 5]), 10).float())).value.backward()
        opt.step()
        assert in_optimizer == learn and torch.equal(centers, before) != learn


# ---------------------------------------------------------------------------- composed models, counts, checkpoints
@pytest.fixture(scope="module")
def resnet_trunk_state():
    """One random torchvision ResNet-50 state (with its 1000-way fc) shared by the DPAH and DCDH tests."""
    shapes = dpah_shapes(12, 190)
    return {k: v for k, v in random_state(shapes).items() if k.startswith("model.")}


def _built(name, L):
    torch.manual_seed(0)
    recipe = hashkit.load_recipe(RECIPES / f"{name}.toml", NO_WEIGHTS)
    model = build_model(recipe, L, 190)
    losses = build_losses(recipe, model, make_component("training_protocol", "sampled_rounds", {}), L, 190)
    return model, losses


def _literal_u(state, x, head):
    tv = torchvision.models.resnet50(weights=None)
    tv.load_state_dict({k[len("model."):]: v for k, v in state.items() if k.startswith("model.")})
    tv.eval()
    with torch.no_grad():
        f = tv.avgpool(tv.layer4(tv.layer3(tv.layer2(tv.layer1(tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))))))).flatten(1)
    return head(f)


def test_dpah_counts_checkpoint_and_forward(resnet_trunk_state):
    from hashkit_plugins.reference_checkpoints import dpah

    model, losses = _built("dpah", 12)
    for L, expected in ((12, 25_586_180), (48, 25_673_624)):
        head = 2049 * L
        trunk = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("hash_head."))
        assert trunk + head + 2 * L * 190 + UNUSED_FC == expected == parameter_count(dpah_shapes(L, 190))
    assert sum(p.numel() for p in model.parameters()) + sum(p.numel() for p in losses.parameters()) + UNUSED_FC \
        == 25_586_180
    shapes = dpah_shapes(12, 190)
    assert len(shapes) == 324
    state = resnet_trunk_state | {k: v for k, v in random_state(shapes, seed=1).items() if not k.startswith("model.")}
    assert sorted(dpah.load_checkpoint(model, losses, state)) == ["model.fc.bias", "model.fc.weight"]
    assert torch.equal(losses.losses[0].mu, state["imgs_semantic.mu"])
    back = dpah.to_reference(model, losses)
    assert set(back) == set(state) - {"model.fc.weight", "model.fc.bias"}
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(6))
    expected = _literal_u(state, x, lambda f: f @ state["hash.weight"].t() + state["hash.bias"])
    with torch.no_grad():
        out = model.eval()(x)
    assert torch.allclose(out.logits, expected, atol=1e-4)


def test_dcdh_counts_checkpoint_and_forward(resnet_trunk_state):
    from hashkit_plugins.reference_checkpoints import dcdh

    model, _ = _built("dcdh", 12)
    trunk = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("hash_head."))
    for L, expected in ((12, 25_581_644), (48, 25_655_480)):
        assert trunk + 2051 * L + UNUSED_FC == expected == parameter_count(dcdh_shapes(L))
    assert sum(p.numel() for p in model.parameters()) + UNUSED_FC == 25_581_644
    shapes = dcdh_shapes(12)
    assert len(shapes) == 327
    state = resnet_trunk_state | {k: v for k, v in random_state(shapes, seed=2).items() if not k.startswith("model.")}
    thop = {"model.total_ops": torch.zeros(1), "hash.0.total_params": torch.zeros(1)}  # thop's counters
    assert sorted(dcdh.load_checkpoint(model, state | thop)) == sorted(["model.fc.bias", "model.fc.weight", *thop])
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(7))

    def code_layer(f):
        v = f @ state["hash.0.weight"].t() + state["hash.0.bias"]
        v = (v - state["hash.1.running_mean"]) / torch.sqrt(state["hash.1.running_var"] + 1e-5)
        return v * state["hash.1.weight"] + state["hash.1.bias"]

    expected = _literal_u(state, x, code_layer)
    with torch.no_grad():
        out = model.eval()(x)
    assert torch.allclose(out.logits, expected, atol=1e-4)
    assert torch.equal(torch.sign(out.codes), torch.sign(expected))
