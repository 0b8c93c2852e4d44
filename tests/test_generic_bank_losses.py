"""The generic losses that keep a memory bank (or other per-item state) against literal references.

Each reference below is written for this test from the formulas of the reference implementations
(swuxyj/DeepHash-pytorch @ ab14068, aassxun/DSH_Analysis @ 44271bc; see docs/methods/generic.md): its own
bank tensors, updated in place with the detached batch *before* the loss, then the loss over every
(batch row, bank row) pair, with the reference's own expression for each term. The harness feeds both the
same >= 3-epoch sequence (revisited rows, a one-class batch, a batch without positive pairs) in float64 and
compares values, gradients and bank state after every batch.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from generic_sequences import C, L, N, check_sequence, sequence
from hashkit.assemble import make_component
from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, EpochStart, LossInputs


pytestmark = pytest.mark.usefixtures("float64_default")


CTX = BuildContext(code_length=L, num_classes=C, num_train=N)


def _loss(name, ctx=CTX, **params):
    return make_component("loss", name, params, ctx)


def _bank_state(loss, ref):
    return {"bank codes": (loss.bank.codes, ref.U), "bank labels": (loss.bank.labels, ref.Y)}


def _softplus_ref(theta, s):
    """The references' stable form of log(1 + e^θ) − sθ."""
    return torch.log(1 + torch.exp(-theta.abs())) + theta.clamp(min=0) - s * theta


class _Bank:
    """A literal bank: U (n, L), Y (n, C) zeros, rows overwritten before each loss."""

    def __init__(self, n=N, length=L, classes=C):
        self.U = torch.zeros(n, length)
        self.Y = torch.zeros(n, classes)

    def write(self, z, y, ind):
        self.U[ind, :] = z.detach()
        self.Y[ind, :] = y


# ------------------------------------------------------------------------------------------------ DPSH, DHN
class RefDPSH(_Bank):
    def __init__(self, alpha=0.1, quant="dpsh"):
        super().__init__()
        self.alpha, self.quant = alpha, quant

    def __call__(self, u, y, ind, step):
        self.write(u, y, ind)
        rows = []
        for i in range(u.shape[0]):  # one batch row against every bank row
            theta = 0.5 * (self.U @ u[i])
            s = ((self.Y @ y[i]) > 0).double()
            rows.append(_softplus_ref(theta, s))
        likelihood = torch.stack(rows).mean()
        if self.quant == "dpsh":
            q = (u - u.sign()).pow(2).mean()
        else:
            q = (u.abs() - 1).cosh().log().mean()
        return likelihood + self.alpha * q


@pytest.mark.parametrize("name,alpha", [("dpsh", 0.1), ("dhn", 0.1), ("dpsh", 0.7)])
def test_dpsh_and_dhn_match_the_reference(name, alpha):
    loss = _loss(name, alpha=alpha)
    check_sequence(loss, RefDPSH(alpha, quant=name), sequence(), state=_bank_state)


def test_bank_options_change_what_they_say():
    steps = sequence(epochs=1)[:2]
    base, masked, sym = _loss("dpsh"), _loss("dpsh", mask_unfilled=True), _loss("dpsh", symmetric_batch_block=True)
    batch = _loss("dpsh", pairs="batch", ctx=BuildContext(code_length=L, num_classes=C))
    assert batch.bank is None and "indices" not in batch.requires
    for step in steps:
        outs = {}
        for key, loss in (("base", base), ("masked", masked), ("sym", sym), ("batch", batch)):
            u = step.u.clone().requires_grad_()
            v = loss(LossInputs(logits=u, labels=step.labels, indices=step.indices)).value
            outs[key] = (v, torch.autograd.grad(v, u)[0])
    u, y = steps[-1].u, steps[-1].labels
    filled = torch.cat([s.indices for s in steps])
    # masked: the mean over the filled rows only; batch: the batch against itself
    ref = RefDPSH()
    ref.U, ref.Y = base.bank.codes.clone(), base.bank.labels.clone()
    theta = 0.5 * u @ ref.U[filled].t()
    s = (y @ ref.Y[filled].t() > 0).double()
    q = 0.1 * (u - u.sign()).pow(2).mean()
    assert outs["masked"][0].item() == pytest.approx((_softplus_ref(theta, s).mean() + q).item(), rel=1e-9)
    theta_b = 0.5 * u @ u.t()
    s_b = (y @ y.t() > 0).double()
    assert outs["batch"][0].item() == pytest.approx((_softplus_ref(theta_b, s_b).mean() + q).item(), rel=1e-9)
    # symmetric: same value, the gradient also flows through the batch's own bank columns
    assert outs["sym"][0].item() == pytest.approx(outs["base"][0].item(), rel=1e-12)
    assert not torch.allclose(outs["sym"][1], outs["base"][1])


def test_bank_needs_num_train_and_rows_in_range():
    with pytest.raises(ContractError, match="num_train"):
        _loss("dpsh", ctx=BuildContext(code_length=L, num_classes=C))
    loss = _loss("dpsh", ctx=BuildContext(code_length=L, num_classes=C, num_train=4))
    with pytest.raises(ContractError, match="outside the bank"):
        loss(LossInputs(logits=torch.randn(2, L), labels=torch.eye(C)[:2], indices=torch.tensor([1, 7])))


# ------------------------------------------------------------------------------------------------ DBDH
class RefDBDH(_Bank):
    def __init__(self, alpha=0.1, p=2):
        super().__init__()
        self.alpha, self.p = alpha, p

    def __call__(self, u, y, ind, step):
        z = u.clamp(min=-1, max=1)
        self.write(z, y, ind)
        s = (y @ self.Y.t() > 0).double()
        theta = z @ self.U.t() * 0.5
        likelihood = _softplus_ref(theta, s).mean()
        code_mean = z.mean(dim=1)
        balance = code_mean.abs().mean() if self.p == 1 else code_mean.pow(2).mean()
        return likelihood + self.alpha * balance


@pytest.mark.parametrize("p", [2, 1])
def test_dbdh_matches_the_reference(p):
    steps = sequence()
    for s in steps:  # keep most entries inside [-1, 1] so the clamp passes a gradient
        s.u.mul_(0.3)
    check_sequence(_loss("dbdh", p=p), RefDBDH(p=p), steps, state=_bank_state)


# ------------------------------------------------------------------------------------------------ IDHN, ISDH
class RefSoft(_Bank):
    def __init__(self, kind, alpha=0.5, gamma=None, lam=0.1):
        super().__init__()
        self.kind, self.alpha, self.lam = kind, alpha, lam
        self.gamma = gamma if gamma is not None else (0.1 if kind == "idhn" else 10.0)

    def __call__(self, u, y, ind, step):
        z = u / (u.abs() + 1)
        self.write(z, y, ind)
        s = y @ self.Y.t()
        norm = y.pow(2).sum(dim=1, keepdim=True).sqrt() @ self.Y.pow(2).sum(dim=1, keepdim=True).sqrt().t()
        s = s / (norm + 0.00001)
        m = (s > 0.99).double() + (s < 0.01).double()
        theta = self.alpha * z @ self.U.t()
        log_loss = torch.log(1 + torch.exp(-theta.abs())) + theta.clamp(min=0) - s * theta
        if self.kind == "idhn":
            q = z.shape[1]
            other = (theta + q - 2 * s * q).pow(2)
            pair = (m * log_loss + self.gamma * (1 - m) * other).mean()
        else:
            other = (s - torch.sigmoid(theta)).pow(2)
            pair = (self.gamma * m * log_loss + (1 - m) * other).mean()
        return pair + self.lam * (z.abs() - 1).abs().mean()


@pytest.mark.parametrize("name,multi", [("idhn", False), ("idhn", True), ("isdh", False), ("isdh", True)])
def test_idhn_and_isdh_match_the_reference(name, multi):
    steps = sequence(multi=multi)
    if multi:  # uncertain pairs (0.01 <= ŝ <= 0.99) exist, so both branches of M are exercised
        assert any(((s.labels @ s.labels.t()) > 0).any() and (s.labels.sum(1) > 1).any() for s in steps)
    check_sequence(_loss(name), RefSoft(name), steps, state=_bank_state)


# ------------------------------------------------------------------------------------------------ DSH
class RefDSH(_Bank):
    def __init__(self, alpha, n=N, reset_each_round=False):
        super().__init__(n)
        self.alpha, self.reset_each_round, self.n = alpha, reset_each_round, n

    def begin_epoch(self, step):
        if self.reset_each_round and step.at.epoch_in_round == 0:
            _Bank.__init__(self, self.n)  # DSH_Analysis creates a new DSHLoss per outer iteration

    def __call__(self, u, y, ind, step):
        self.write(u, y, ind)
        m = 2 * u.shape[1]
        dist = (u.unsqueeze(1) - self.U.unsqueeze(0)).pow(2).sum(dim=2)
        dissimilar = (y @ self.Y.t() == 0).double()
        loss = (1 - dissimilar) / 2 * dist + dissimilar / 2 * (m - dist).clamp(min=0)
        return loss.mean() + self.alpha * (1 - u.abs()).abs().mean()


def test_dsh_matches_deephash_pytorch():
    steps = sequence()
    for s in steps:  # distances on both sides of the margin 2L
        s.u.mul_(0.4)
    check_sequence(_loss("dsh"), RefDSH(0.1), steps, state=_bank_state)


def test_dsh_matches_dsh_analysis_sample_bank():
    """DSH_Analysis: a bank of the round's sample keyed by position, new each outer iteration, alpha 0.01."""
    m = 20
    steps = sequence(n=m, batch=6, epochs=2, rounds=2, seed=3)
    for s in steps:
        s.u.mul_(0.4)
    loss = _loss("dsh", alpha=0.01, key="position", rows=m, reset="round",
                 ctx=BuildContext(code_length=L, num_classes=C))
    assert "protocol.position" in loss.requires
    check_sequence(loss, RefDSH(0.01, n=m, reset_each_round=True), steps, state=_bank_state,
                   protocol=lambda step: {"position": step.indices})


# ------------------------------------------------------------------------------------------------ HashNet
class RefHashNetBatch:
    """DeepHash-pytorch: batch pairs, θ + log(1 + e^{-θ}) - Sθ, weights |S|/|S1| and |S|/|S0|, sum / |S|."""

    def __init__(self, step_continuation, alpha=0.1):
        self.step_continuation, self.alpha, self.scale = step_continuation, alpha, 1.0

    def begin_epoch(self, step):
        self.scale = (step.at.epoch // self.step_continuation + 1) ** 0.5

    def __call__(self, u, y, ind, step):
        u = torch.tanh(self.scale * u)
        S = (y @ y.t() > 0).double()
        dot = self.alpha * u @ u.t()
        mask_positive = S > 0
        mask_negative = (1 - S).bool()
        nlp = dot + torch.log(1 + torch.exp(-dot)) - S * dot
        S1, S0 = mask_positive.double().sum(), mask_negative.double().sum()
        total = S0 + S1
        nlp = nlp.clone()
        nlp[mask_positive] = nlp[mask_positive] * total / S1
        nlp[mask_negative] = nlp[mask_negative] * total / S0
        return nlp.sum() / total


class RefHashNetBank(_Bank):
    """DSH_Analysis: the same weighting against a bank of tanh(βu) keyed by sample position, never reset."""

    def __init__(self, step_continuation, n, alpha=0.1):
        super().__init__(n)
        self.step_continuation, self.alpha, self.scale = step_continuation, alpha, 1.0

    begin_epoch = RefHashNetBatch.begin_epoch

    def __call__(self, u, y, ind, step):
        u = torch.tanh(self.scale * u)
        self.write(u, y, ind)
        similarity = (y @ self.Y.t() > 0).double()
        dot = self.alpha * u @ self.U.t()
        pos, neg = similarity > 0, similarity <= 0
        exp_loss = (1 + (-dot.abs()).exp()).log() + dot.clamp(min=0) - similarity * dot
        S1, S0 = pos.double().sum(), neg.double().sum()
        total = S0 + S1
        exp_loss = exp_loss.clone()
        exp_loss[pos] = exp_loss[pos] * (total / S1)
        exp_loss[neg] = exp_loss[neg] * (total / S0)
        return exp_loss.sum() / total


def test_hashnet_batch_form_with_continuation_matches_deephash_pytorch():
    loss = _loss("hashnet", step_continuation=1, ctx=BuildContext(code_length=L, num_classes=C))
    assert loss.bank is None
    ref = RefHashNetBatch(1)
    check_sequence(loss, ref, sequence(), state=lambda a, b: {"scale": (a.scale, torch.tensor(b.scale))})
    assert ref.scale == pytest.approx(math.sqrt(3))


def test_hashnet_bank_form_matches_dsh_analysis():
    m = 20
    loss = _loss("hashnet", pairs="bank", key="position", rows=m, step_continuation=2,
                 ctx=BuildContext(code_length=L, num_classes=C))
    steps = sequence(n=m, batch=6, epochs=2, rounds=2, seed=4)
    check_sequence(loss, RefHashNetBank(2, m), steps, state=_bank_state, protocol=lambda s: {"position": s.indices})


def test_hashnet_continuation_schedule_of_both_references():
    loss = _loss("hashnet", ctx=BuildContext(code_length=L, num_classes=C))
    for epoch in (0, 19, 20, 149):  # DeepHash-pytorch: sqrt(epoch // 20 + 1)
        loss.begin_epoch(EpochStart.at(epoch, 0, 1, 150))
        assert float(loss.scale) == pytest.approx((epoch // 20 + 1) ** 0.5)
    dsa = _loss("hashnet", step_continuation=15, ctx=BuildContext(code_length=L, num_classes=C))
    for t in range(40):  # DSH_Analysis, 40 iterations x 30 epochs: sqrt(2t + e // 15 + 1)
        for e in (0, 14, 15, 29):
            dsa.begin_epoch(EpochStart.at(t, e, 30, 40))
            assert float(dsa.scale) == pytest.approx((2 * t + e // 15 + 1) ** 0.5)


# ------------------------------------------------------------------------------------------------ DSDH
class RefDSDH:
    """DeepHash-pytorch's layout: U, B (L, n), Y (C, n); updateBandW before every epoch."""

    def __init__(self, mu=1.0, nu=1.0, eta=55.0, dcc_iter=10, n=N):
        self.mu, self.nu, self.eta, self.dcc_iter = mu, nu, eta, dcc_iter
        self.U, self.B, self.Y = torch.zeros(L, n), torch.zeros(L, n), torch.zeros(C, n)
        self.W = None

    def begin_epoch(self, step):
        B = self.B
        for _ in range(self.dcc_iter):
            W = torch.inverse(B @ B.t() + self.nu / self.mu * torch.eye(L)) @ B @ self.Y.t()
            for i in range(B.shape[0]):
                P = W @ self.Y + self.eta / self.mu * self.U
                p, w = P[i, :], W[i, :]
                W_prime = torch.cat((W[:i, :], W[i + 1:, :]))
                B_prime = torch.cat((B[:i, :], B[i + 1:, :]))
                B[i, :] = (p - B_prime.t() @ W_prime @ w).sign()
        self.B, self.W = B, W

    def __call__(self, u, y, ind, step):
        self.U[:, ind] = u.t().detach()
        self.Y[:, ind] = y.t()
        theta = u @ self.U * 0.5
        s = (y @ self.Y > 0).double()
        likelihood = ((1 + (-theta.abs()).exp()).log() + theta.clamp(min=0) - s * theta).mean()
        cl = (y.t() - self.W.t() @ self.B[:, ind]).pow(2).mean()
        reg = self.W.pow(2).mean()
        return likelihood + self.mu * cl + self.nu * reg


def test_dsdh_matches_the_reference_including_b_and_w():
    loss = _loss("dsdh")
    ref = RefDSDH()

    def state(a, b):
        return {"bank codes": (a.bank.codes, b.U.t()), "bank labels": (a.bank.labels, b.Y.t()),
                "B": (a.B, b.B.t()), "W": (a.W, b.W)}

    steps = sequence(epochs=3)
    check_sequence(loss, ref, steps, state=state)
    assert (loss.B != 0).float().mean() > 0.9 and loss.W.abs().sum() > 0  # epochs 2 and 3 learned B and W


def test_dsdh_quantization_option_adds_the_papers_term():
    ctx = CTX
    plain, fixed = _loss("dsdh", ctx=ctx), _loss("dsdh", quantization=0.5, ctx=ctx)
    for loss in (plain, fixed):
        loss.B.fill_(1.0)
    u = torch.randn(3, L)
    y = torch.eye(C)[:3]
    ind = torch.tensor([0, 1, 2])
    a = plain(LossInputs(logits=u, labels=y, indices=ind)).value
    b = fixed(LossInputs(logits=u, labels=y, indices=ind)).value
    assert (b - a).item() == pytest.approx(0.5 * (1 - u).pow(2).mean().item(), rel=1e-12)


# ------------------------------------------------------------------------------------------------ DFH
class RefDFH:
    def __init__(self, mu=0.1, m=3.0, eta=0.5, vul=1.0, nta=1.0, n=N):
        self.mu, self.m, self.eta, self.vul, self.nta = mu, m, eta, vul, nta
        self.U, self.Y = torch.zeros(L, n), torch.zeros(C, n)
        self.V = torch.zeros(L, C)
        self.C = self.V.sign()
        self.TK = L * (2 * torch.eye(C) - torch.ones(C))

    def center_gradient(self, y, b):
        V = self.V.clone().requires_grad_()
        alpha = 0.03
        for i in range(200):
            intra = (V @ y.t() - b).pow(2).mean()
            inter = (V.t() @ V - self.TK).pow(2).mean()
            quant = (V - V.sign()).pow(2).mean()
            (grad,) = torch.autograd.grad(intra + self.vul * inter + self.nta * quant, V)
            if i in (149, 179):
                alpha = alpha * 0.1
            V = (V - alpha * grad).detach().requires_grad_()
        self.V = V.detach()
        self.C = self.V.sign()

    def __call__(self, u, y, ind, step):
        self.U[:, ind] = u.t().detach()
        self.Y[:, ind] = y.t()
        b = (self.mu * self.C @ y.t() + u.t()).sign().detach()
        self.center_gradient(y, b)
        s = (y @ self.Y > 0).double()
        theta = (u @ self.U * 0.5).clamp(min=-100, max=50)
        metric = ((1 - s) * torch.log(1 + torch.exp(self.m + theta))
                  + s * torch.log(1 + torch.exp(self.m - theta))).mean()
        return metric + self.eta * (b - u.t()).pow(2).mean()


def test_dfh_matches_the_reference_including_the_centres():
    steps = sequence(epochs=2)[:8]  # the centre loop is 200 steps per batch: 8 batches revisit rows
    loss = _loss("dfh")

    def state(a, b):
        return {"bank codes": (a.bank.codes, b.U.t()), "V": (a.V, b.V), "centers": (a.centers, b.C)}

    check_sequence(loss, RefDFH(), steps, state=state)
    assert (loss.centers != 0).all()


# ------------------------------------------------------------------------------------------------ DPN "-A"
class RefDPN:
    def __init__(self, targets, fill, m=1.0, update=False, single_label=False, n=N):
        self.targets, self.fill, self.m, self.update, self.single = targets.clone(), fill.clone(), m, update, single_label
        self.U, self.Y = torch.zeros(n, L), torch.zeros(n, C)

    def begin_epoch(self, step):
        if self.update and step.at.epoch > 0:  # the reference updates after each epoch
            self.U = (self.U.abs() > self.m).double() * self.U.sign()
            self.targets = (self.Y.t() @ self.U).sign()

    def __call__(self, u, y, ind, step):
        self.U[ind, :] = u.detach()
        self.Y[ind, :] = y
        if self.single:
            t = self.targets[y.argmax(dim=1)]
        else:
            center_sum = y @ self.targets
            random_center = ((self.fill + 1) / 2).repeat(center_sum.shape[0], 1)  # the reference's {0, 1} vector
            center_sum[center_sum == 0] = random_center[center_sum == 0]
            t = 2 * (center_sum > 0).double() - 1
        return (self.m - u * t).clamp(0).mean()


@pytest.mark.parametrize("update,multi,rule", [(False, True, "sum"), (True, False, "sum"), (False, True, "argmax")])
def test_dpn_matches_the_reference(update, multi, rule):
    loss = _loss("dpn", update_targets=update, multi_label=rule)
    assert ((loss.targets == -1).sum(dim=1) == L // 2).all()
    ref = RefDPN(loss.targets, loss.multi_label_fill, update=update, single_label=rule == "argmax")
    state = (lambda a, b: {"targets": (a.targets, b.targets), "bank codes": (a.bank.codes, b.U)}) if update else \
        (lambda a, b: {"targets": (a.targets, b.targets)})
    check_sequence(loss, ref, sequence(multi=multi), state=state)


# ------------------------------------------------------------------------------------------------ MDSH
class RefMDSH:
    """DSH_Analysis center.py: L_c on softmax(√L cos(z, h)), L_p on a randn-initialised bank from epoch_change."""

    def __init__(self, centers, epoch_change):
        self.h, self.epoch_change = centers.clone(), epoch_change
        self.U = self.Y = None

    def begin_epoch(self, step):
        pass  # the bank's N(0, 1) refill is copied from hashkit's loss at each round start (state copy)

    def __call__(self, u, y, ind, step):
        z = torch.tanh(u)
        self.U[ind, :] = z.detach()
        self.Y[ind, :] = y
        K = z.shape[1]
        if step.at.epoch_in_round < self.epoch_change:
            pair = torch.zeros(())
        else:
            un, Un = F.normalize(z), F.normalize(self.U)
            sim = ((y @ self.Y.t()) > 0).double()
            pair = torch.sum(sim * torch.log(1 + torch.exp(0.5 * (1 - un @ Un.t())))) / torch.sum(sim)
        cos = K ** 0.5 * (F.normalize(z) @ F.normalize(self.h).t())
        p = torch.softmax(cos, dim=1)
        center = -torch.mean(y * torch.log(p) + (1 - y) * torch.log(1 - p))
        return 10 * center + pair + 0.0001 * (z.abs() - 1).pow(2).mean()


def test_mdsh_matches_the_reference_with_per_round_random_bank():
    m = 20
    loss = _loss("mdsh", key="position", rows=m, epoch_change=1, ctx=BuildContext(code_length=L, num_classes=C))
    ref = RefMDSH(loss.centers, 1)
    original = loss.begin_epoch

    def begin_and_copy(at):  # copy the fresh N(0, 1) bank into the reference (the parity harness's state copy)
        original(at)
        if at.epoch_in_round == 0:
            ref.U, ref.Y = loss.bank.codes.clone(), loss.bank.labels.clone()

    loss.begin_epoch = begin_and_copy
    steps = sequence(n=m, batch=6, epochs=3, rounds=2, seed=5)
    check_sequence(loss, ref, steps, state=_bank_state, protocol=lambda s: {"position": s.indices})
    assert int(loss.min_distance) >= 1


def test_mdsh_bank_is_refilled_per_round_reproducibly():
    a, b = _loss("mdsh"), _loss("mdsh")
    a.begin_epoch(EpochStart.at(3, 0, 2, 5))
    b.begin_epoch(EpochStart.at(3, 0, 2, 5))
    assert torch.equal(a.bank.codes, b.bank.codes) and a.bank.codes.std() > 0.5
    before = a.bank.codes.clone()
    a.begin_epoch(EpochStart.at(3, 1, 2, 5))  # not a round start: unchanged
    assert torch.equal(a.bank.codes, before)
