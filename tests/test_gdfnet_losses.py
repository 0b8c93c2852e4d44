"""GDF-Net's losses against literal references written from the formulas (DCH, bit balance /
decorrelation, centre loss)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from hashkit.assemble import make_component
from hashkit.interfaces import BuildContext, LossInputs
from hashkit.recipe.load import load_recipe
from hashkit.testing import check_component

RECIPES = Path(__file__).resolve().parent.parent / "recipes"

LOSSES = ["cauchy_cross_entropy", "cauchy_quantization", "bit_balance", "bit_decorrelation", "center_loss",
          "gdfnet_hash"]


def _batch(b=7, length=10, classes=4, seed=0, multi=False):
    g = torch.Generator().manual_seed(seed)
    u = torch.tanh(torch.randn(b, length, generator=g) * 1.5)
    if multi:
        labels = (torch.rand(b, classes, generator=g) < 0.35).float()
        labels[labels.sum(1) == 0, 0] = 1.0
    else:
        labels = torch.nn.functional.one_hot(torch.randint(0, classes, (b,), generator=g), classes).float()
    return u, labels


def _loss(name, ctx=None, **params):
    return make_component("loss", name, params, ctx or BuildContext(code_length=10, num_classes=4))


def _value_and_grad(loss, u, labels, field="codes"):
    x = u.clone().requires_grad_()
    value = loss(LossInputs(**{field: x}, labels=labels)).value
    (grad,) = torch.autograd.grad(value, x)
    return value.detach(), grad


def _ref_grad(fn, u):
    x = u.double().clone().requires_grad_()
    value = fn(x)
    (grad,) = torch.autograd.grad(value, x)
    return value.detach(), grad


@pytest.mark.parametrize("name", LOSSES)
def test_conformance(name):
    check_component("loss", name)


# ---------------------------------------------------------------- DCH Cauchy cross-entropy
def _cce_reference(u, labels, gamma, include_diagonal=False, cos_max=0.99, norm_eps=1e-4):
    """Literal double loop over pairs: w_ij [s log(d/γ) + log(1 + γ/d)], class-balanced weights."""
    b, length = u.shape
    pairs = [(i, j) for i in range(b) for j in range(b) if include_diagonal or i != j]
    sims, dists = [], []
    for i, j in pairs:
        s = 1.0 if float((labels[i] * labels[j]).sum()) > 0 else 0.0
        cos = (u[i] * u[j]).sum() / torch.clamp(u[i].norm() * u[j].norm(), min=norm_eps)
        cos = torch.clamp(cos, max=cos_max)
        sims.append(s)
        dists.append(length / 2.0 * (1.0 - cos))
    n_all, n_pos = len(pairs), sum(sims)
    n_neg = n_all - n_pos
    total = 0.0
    for s, d in zip(sims, dists):
        if n_pos and n_neg:
            w = n_all / n_pos if s else n_all / n_neg
        else:
            w = 1.0
        total = total + w * (s * torch.log(d / gamma) + torch.log(1 + gamma / d))
    return total / n_all


@pytest.mark.parametrize("seed,multi,diag,gamma", [(0, False, False, 20.0), (1, True, False, 5.0),
                                                   (2, False, True, 20.0)])
def test_cauchy_cross_entropy_matches_formula(seed, multi, diag, gamma):
    u, labels = _batch(seed=seed, multi=multi)
    loss = _loss("cauchy_cross_entropy", gamma=gamma, include_diagonal=diag)
    value, grad = _value_and_grad(loss, u, labels)
    ref, ref_grad = _ref_grad(lambda x: _cce_reference(x, labels.double(), gamma, diag), u)
    assert value.item() == pytest.approx(ref.item(), rel=1e-5)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-4, atol=1e-6)
    assert grad.abs().sum() > 0


def test_cauchy_cross_entropy_single_kind_of_pairs_uses_unit_weights():
    u, _ = _batch(b=5)
    labels = torch.zeros(5, 3)
    labels[:, 1] = 1  # every pair similar
    loss = _loss("cauchy_cross_entropy")
    value, _ = _value_and_grad(loss, u, labels)
    assert value.item() == pytest.approx(_cce_reference(u.double(), labels.double(), 20.0).item(), rel=1e-5)


def test_cauchy_cross_entropy_pulls_similar_pushes_dissimilar():
    labels = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    loss = _loss("cauchy_cross_entropy")
    close = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, -1.0], [-1.0, -1.0, -1.0, -1.0]])
    far = torch.tensor([[1.0, 1.0, 1.0, 1.0], [-1.0, -1.0, -1.0, 1.0], [1.0, 1.0, 1.0, -1.0]])
    assert loss(LossInputs(codes=close, labels=labels)).value < loss(LossInputs(codes=far, labels=labels)).value


# ---------------------------------------------------------------- DCH Cauchy quantisation
def _cq_reference(u, gamma, norm_eps=1e-4):
    b, length = u.shape
    total = 0.0
    for i in range(b):
        a = u[i].abs()
        cos = a.sum() / torch.clamp(a.norm() * math.sqrt(length), min=norm_eps)
        total = total + torch.log(1 + (length / 2.0) * (1 - cos) / gamma)
    return total / b


@pytest.mark.parametrize("gamma", [20.0, 2.0])
def test_cauchy_quantization_matches_formula(gamma):
    u, labels = _batch(seed=3)
    loss = _loss("cauchy_quantization", gamma=gamma)
    value, grad = _value_and_grad(loss, u, labels)
    ref, ref_grad = _ref_grad(lambda x: _cq_reference(x, gamma), u)
    assert value.item() == pytest.approx(ref.item(), rel=1e-5)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-4, atol=1e-7)
    assert grad.abs().sum() > 0


def test_cauchy_quantization_is_scale_invariant():
    """DCH: the loss depends only on the direction of |u| ..."""
    g = torch.Generator().manual_seed(4)
    h = torch.randn(6, 12, generator=g)
    loss = _loss("cauchy_quantization", input="logits")
    base = loss(LossInputs(logits=h)).value
    for c in (1e-2, 0.5, 3.0, 100.0):
        assert loss(LossInputs(logits=c * h)).value.item() == pytest.approx(base.item(), rel=1e-5)
    # ... so its gradient is orthogonal to each u_i (degree-0 homogeneous): it never pushes |u| towards 1
    x = h.clone().requires_grad_()
    (grad,) = torch.autograd.grad(loss(LossInputs(logits=x)).value, x)
    torch.testing.assert_close((grad * h).sum(dim=1), torch.zeros(6), atol=1e-6, rtol=0)
    # a code whose bits all have the same magnitude costs nothing, however small that magnitude
    tiny = 1e-3 * torch.sign(h)
    assert loss(LossInputs(logits=tiny)).value.item() == pytest.approx(0.0, abs=1e-6)


def test_gdfnet_recipes_pair_cauchy_quantization_with_a_bounded_output():
    for path in (RECIPES / "gdfnet.toml", RECIPES / "gdfnet-demo.toml", RECIPES / "mix-sem-knn-cauchy.toml"):
        recipe = load_recipe(path)
        cq = [ref for ref in recipe.losses if ref.name == "cauchy_quantization"]
        assert cq, path
        assert all(ref.config.input == "codes" for ref in cq), path
        assert recipe.hash_head.name == "linear" and recipe.hash_head.config.activation == "tanh", path


# ---------------------------------------------------------------- the author code's hash loss (faithful option)
def test_gdfnet_hash_is_the_author_hash_loss():
    h = torch.randn(5, 12, generator=torch.Generator().manual_seed(4)) * 2
    h[0, 0] = 0.0  # sgn(0) = +1, as the author's torch.where(h >= 0, 1, -1)
    x = h.clone().requires_grad_()
    res = _loss("gdfnet_hash")(LossInputs(logits=x))
    # literal transcription of hash_loss: a B x B matrix whose row i holds sum_k sgn(h_ik), squared, averaged
    b, length = h.shape
    signs = torch.where(h >= 0, 1.0, -1.0)
    matrix = signs @ torch.ones(length, b)
    balance = matrix.pow(2).mean()
    quant = (h.abs() - 1).pow(2).mean()
    assert res.value.item() == pytest.approx(float((balance + quant) / b), rel=1e-6)
    assert res.parts["balance"].item() == pytest.approx(float(balance), rel=1e-6)
    # the balance has no gradient: the gradient is that of the quantisation alone, 2 (|h| - 1) sgn(h) / (B L B)
    (grad,) = torch.autograd.grad(res.value, x)
    torch.testing.assert_close(grad, 2 * (h.abs() - 1) * torch.sign(h) / (b * length * b))


def test_faithful_recipe_swaps_the_code_losses_only():
    base, faithful = load_recipe(RECIPES / "gdfnet.toml"), load_recipe(RECIPES / "gdfnet-faithful.toml")
    assert [r.name for r in faithful.losses] == ["cross_entropy", "center_loss", "gdfnet_hash"]
    assert faithful.losses[2].config.input == "logits" and faithful.losses[2].weight == 1.0
    assert [(r.name, r.config) for r in faithful.losses[:2]] == [(r.name, r.config) for r in base.losses[:2]]
    assert (faithful.model, faithful.data, faithful.optimizer) == (base.model, base.data, base.optimizer)


# ---------------------------------------------------------------- bit balance and decorrelation
def test_bit_balance_per_bit_matches_formula_and_analytic_gradient():
    u, labels = _batch(b=9, length=6, seed=5)
    value, grad = _value_and_grad(_loss("bit_balance", form="per_bit"), u, labels)
    b, length = u.shape
    ref = sum(float(sum(u[i, k] for i in range(b)) / b) ** 2 for k in range(length)) / length
    assert value.item() == pytest.approx(ref, rel=1e-5)
    analytic = (2.0 / (length * b)) * u.mean(dim=0, keepdim=True).expand(b, length)
    torch.testing.assert_close(grad, analytic, rtol=1e-5, atol=1e-7)


def test_bit_balance_per_code_matches_formula_and_analytic_gradient():
    u, labels = _batch(b=9, length=6, seed=6)
    value, grad = _value_and_grad(_loss("bit_balance", form="per_code"), u, labels)
    b, length = u.shape
    ref = sum(float(sum(u[i, k] for k in range(length)) / length) ** 2 for i in range(b)) / b
    assert value.item() == pytest.approx(ref, rel=1e-5)
    analytic = (2.0 / (length * b)) * u.mean(dim=1, keepdim=True).expand(b, length)
    torch.testing.assert_close(grad, analytic, rtol=1e-5, atol=1e-7)


def test_bit_balance_is_zero_on_balanced_codes():
    codes = torch.tensor([[1.0, -1.0, 1.0, -1.0], [-1.0, 1.0, -1.0, 1.0]])
    for form in ("per_bit", "per_code"):
        assert _loss("bit_balance", form=form)(LossInputs(codes=codes)).value.item() == 0.0


def test_bit_decorrelation_frobenius_matches_formula_and_analytic_gradient():
    u, labels = _batch(b=8, length=5, seed=7)
    value, grad = _value_and_grad(_loss("bit_decorrelation", form="frobenius"), u, labels)
    b, length = u.shape
    ref = 0.0
    for k in range(length):
        for m in range(length):
            corr = sum(float(u[i, k] * u[i, m]) for i in range(b)) / b
            ref += (corr - (1.0 if k == m else 0.0)) ** 2
    assert value.item() == pytest.approx(ref, rel=1e-5)
    analytic = (4.0 / b) * u @ (u.t() @ u / b - torch.eye(length))
    torch.testing.assert_close(grad, analytic, rtol=1e-4, atol=1e-6)


def test_bit_decorrelation_a2net_form_matches_formula():
    u, labels = _batch(b=8, length=5, seed=8)
    loss = _loss("bit_decorrelation", form="a2net")
    value, grad = _value_and_grad(loss, u, labels)
    b, length = u.shape

    def ref_fn(x):
        gram = x.t() @ x
        total = 0.0
        for k in range(length):
            for m in range(length):
                total = total + (gram[k, m] - (b if k == m else 0.0)) ** 2
        return total / (length * length) / (b * length)

    ref, ref_grad = _ref_grad(ref_fn, u)
    assert value.item() == pytest.approx(ref.item(), rel=1e-5)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-4, atol=1e-7)


# ---------------------------------------------------------------- centre loss
def test_center_loss_matches_formula_gradient_and_update():
    g = torch.Generator().manual_seed(9)
    classes, dim = 3, 6
    loss = _loss("center_loss", BuildContext(num_classes=classes, descriptor_dims={"a": 4, "b": 2}), beta=0.25)
    centers = torch.randn(classes, dim, generator=g)
    loss.centers.copy_(centers)
    z = torch.randn(5, dim, generator=g)
    y = torch.tensor([0, 2, 0, 0, 1])
    labels = torch.nn.functional.one_hot(y, classes).float()
    loss.train()
    x = z.clone().requires_grad_()
    value = loss(LossInputs(descriptor=x, labels=labels)).value
    (grad,) = torch.autograd.grad(value, x)
    unit = [centers[c] / centers[c].norm() for c in range(classes)]
    ref = sum(float(((z[i] - unit[int(y[i])]) ** 2).sum()) for i in range(5)) / 5
    assert value.item() == pytest.approx(ref, rel=1e-5)
    analytic = torch.stack([2 * (z[i] - unit[int(y[i])]) / 5 for i in range(5)])
    torch.testing.assert_close(grad, analytic)
    # update: c_y += beta * mean over the batch's class-y samples of (z_i - ĉ_y)
    expected = centers.clone()
    for c in range(classes):
        members = [i for i in range(5) if int(y[i]) == c]
        if members:
            expected[c] += 0.25 * sum(z[i] - unit[c] for i in members) / len(members)
    torch.testing.assert_close(loss.centers, expected)
    # no update in eval mode
    loss.eval()
    loss(LossInputs(descriptor=z, labels=labels))
    torch.testing.assert_close(loss.centers, expected)
    assert "centers" in loss.state_dict()


def test_center_loss_on_codes_sizes_its_centres_by_code_length():
    loss = _loss("center_loss", BuildContext(num_classes=4, code_length=10), input="codes")
    assert tuple(loss.centers.shape) == (4, 10)


def test_center_loss_update_is_all_reduced_under_torch_distributed(tmp_path):
    """With a (one-process gloo) process group the update goes through all_reduce and stays the class mean."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        loss = _loss("center_loss", BuildContext(num_classes=2, code_length=3), input="codes", beta=0.5)
        loss.train()
        codes = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        labels = torch.nn.functional.one_hot(torch.tensor([0, 0, 1]), 2).float()
        loss(LossInputs(codes=codes, labels=labels))
        torch.testing.assert_close(loss.centers, torch.tensor([[0.25, 0.25, 0.0], [0.0, 0.0, 0.5]]))
    finally:
        dist.destroy_process_group()
