"""The generic losses without a memory bank, and the four that existed before (csq, orthohash, DCH's
cauchy_cross_entropy + cauchy_quantization, adsh), against literal references written for this test from
the reference implementations' formulas (swuxyj/DeepHash-pytorch @ ab14068, aassxun/DSH_Analysis @ 44271bc;
see docs/methods/generic.md). Same harness as the bank losses: >= 3 batches in float64, values, gradients
(w.r.t. the raw output and the losses' own parameters) and state after every batch.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from generic_sequences import C, L, N, check_sequence, sequence
from hashkit.assemble import make_component
from hashkit.interfaces import BuildContext


pytestmark = pytest.mark.usefixtures("float64_default")


CTX = BuildContext(code_length=L, num_classes=C, num_train=N)
STEPS = 9  # three batches from each of three epochs' worth of the sequence


def _steps(**kw):
    return sequence(**kw)[:STEPS]


def _loss(name, ctx=CTX, **params):
    return make_component("loss", name, params, ctx)


# ------------------------------------------------------------------------------------------------ DTSH
def ref_dtsh(alpha=5.0, lam=1.0, half=False):
    def ref(u, y, ind, step):
        inner_product = u @ u.t() * (0.5 if half else 1.0)
        s = y @ y.t() > 0
        count, loss1 = 0, 0
        for row in range(s.shape[0]):
            if s[row].sum() != 0 and (~s[row]).sum() != 0:
                count += 1
                theta_p = inner_product[row][s[row]]
                theta_n = inner_product[row][~s[row]]
                triple = (theta_p.unsqueeze(1) - theta_n.unsqueeze(0) - alpha).clamp(min=-100, max=50)
                loss1 = loss1 + -(triple - torch.log(1 + torch.exp(triple))).mean()
        loss1 = loss1 / count if count else 0
        return loss1 + lam * (u - u.sign()).pow(2).mean()
    return ref


@pytest.mark.parametrize("params", [{}, {"alpha": 2.0, "half_inner_product": True}])
def test_dtsh_matches_the_reference(params):
    steps = sequence()[:6] + sequence()[-3:]  # the last batch has no positive pair: no anchor qualifies
    check_sequence(_loss("dtsh", **params), ref_dtsh(params.get("alpha", 5.0), half=bool(params)), steps)


# ------------------------------------------------------------------------------------------------ LCDSH
def ref_lcdsh(lam=3.0):
    def ref(u, y, ind, step):
        s = 2 * (y @ y.t() > 0).double() - 1
        ip = (u @ u.t() * 0.5).clamp(min=-50, max=50)
        l1 = torch.log(1 + torch.exp(-s * ip)).mean()
        b = u.sign()
        l2 = (ip.sigmoid() - (b @ b.t() * 0.5).sigmoid()).pow(2).mean()
        return l1 + lam * l2
    return ref


def test_lcdsh_matches_the_reference():
    steps = _steps()
    for s in steps:
        s.u.mul_(0.5)  # keep ½uuᵀ partly inside the clamp
    check_sequence(_loss("lcdsh"), ref_lcdsh(), steps)


# ------------------------------------------------------------------------------------------------ QSMIH
def ref_qsmih(alpha=0.01, square=True):
    def ref(u, y, ind, step):
        u = u / (torch.sqrt(torch.sum(u ** 2, dim=1, keepdim=True)) + 1e-8)
        Y = 0.5 * (u @ u.t() + 1)
        D = (y @ y.t() > 0).double()
        M = D.size(1) ** 2 / torch.sum(D)
        lq = ((D * Y - 1) ** 2 + (1.0 / M) * Y ** 2) if square else ((1.0 / M) * Y - D * Y)
        return lq.mean() + alpha * (u.abs() - 1).abs().mean()
    return ref


@pytest.mark.parametrize("square", [True, False])
def test_qsmih_matches_the_reference(square):
    check_sequence(_loss("qsmih", square_clamp=square), ref_qsmih(square=square), _steps())


# ------------------------------------------------------------------------------------------------ GreedyHash
class RefGreedyHash:
    def __init__(self, weight, alpha=0.1):
        self.W = weight.detach().clone().requires_grad_()
        self.alpha = alpha

    def __call__(self, u, y, ind, step):
        b = u + (u.sign() - u).detach()  # straight-through: sign forward, identity backward
        loss1 = F.cross_entropy(b @ self.W.t(), y.argmax(dim=1))
        return loss1 + self.alpha * (u.abs() - 1).pow(3).abs().mean()


def test_greedyhash_matches_the_reference_and_trains_its_classifier():
    loss = _loss("greedyhash")
    assert loss.classifier.weight.requires_grad and loss.classifier.bias is None
    ref = RefGreedyHash(loss.classifier.weight)
    check_sequence(loss, ref, _steps(),
                   extra_leaves=lambda a, b: [("classifier", a.classifier.weight, b.W)])


def test_sign_ste_passes_the_gradient_unchanged():
    from hashkit.codes.binarize import sign_ste

    x = torch.tensor([-2.0, 0.0, 0.5], requires_grad=True)
    out = sign_ste(x, "zero")
    assert out.tolist() == [-1.0, 0.0, 1.0] and sign_ste(x).tolist() == [-1.0, 1.0, 1.0]
    (g,) = torch.autograd.grad((out * torch.tensor([1.0, 2.0, 3.0])).sum(), x)
    assert g.tolist() == [1.0, 2.0, 3.0]


# ------------------------------------------------------------------------------------------------ DSHSD
class RefDSHSD:
    def __init__(self, weight, alpha=0.05, nuswide=False):
        self.W, self.alpha, self.nuswide = weight.detach().clone(), alpha, nuswide

    def __call__(self, u, y, ind, step):
        u = torch.tanh(u)
        m = 2 * u.shape[1]
        dist = (u.unsqueeze(1) - u.unsqueeze(0)).pow(2).sum(dim=2)
        s = (y @ y.t() == 0).double()
        ld = self.alpha * ((1 - s) / 2 * dist + s / 2 * (m - dist).clamp(min=0)).mean()
        o = u @ self.W.t()
        if self.nuswide:
            lc = (o - y * o + ((1 + (-o).exp()).log())).sum(dim=1).mean()
        else:
            lc = (-o.softmax(dim=1).log() * y).sum(dim=1).mean()
        return lc + ld


@pytest.mark.parametrize("classification,multi", [("softmax", False), ("sigmoid", True)])
def test_dshsd_matches_the_reference_with_its_untrained_classifier(classification, multi):
    loss = _loss("dshsd", classification=classification)
    assert not loss.classifier.weight.requires_grad  # the reference never optimises W
    check_sequence(loss, RefDSHSD(loss.classifier.weight, nuswide=classification == "sigmoid"), _steps(multi=multi))
    assert _loss("dshsd", train_classifier=True).classifier.weight.requires_grad


# ------------------------------------------------------------------------------------------------ PSLDH
def ref_psldh(label_code, gamma=0.2, sigma=0.2, lamda=0.01):
    def ref(u, targets, ind, step):
        hash_out = torch.tanh(u)
        code_length, the_batch = hash_out.shape[1], hash_out.shape[0]
        logit = hash_out.mm(label_code.t())
        our_logit = torch.exp((logit - sigma * code_length) * gamma) * targets
        mu_logit = (torch.exp(logit * gamma) * (1 - targets)).sum(1).view(-1, 1).expand(
            the_batch, targets.size()[1]) + our_logit
        loss = -((torch.log(our_logit / mu_logit + 1 - targets)).sum(1) / targets.sum(1)).sum()
        regterm = (torch.sign(hash_out) - hash_out).pow(2).sum()
        return loss / the_batch + regterm * lamda / the_batch
    return ref


@pytest.mark.parametrize("multi", [False, True])
def test_psldh_matches_the_reference(multi):
    loss = _loss("psldh", label_steps=20)
    check_sequence(loss, ref_psldh(loss.label_codes.clone()), _steps(multi=multi))


def test_psldh_stage_one_equals_the_reference_loop():
    """Stage 1 as the reference runs it (narrower hidden layer): StepLR(100, 0.1) stepped before each of 200 SGD steps."""
    from hashkit_plugins.losses.psldh import label_codes

    classes, bits = 6, 8
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        net = torch.nn.Sequential(torch.nn.Linear(classes, 64), torch.nn.ReLU(inplace=True),
                                  torch.nn.Linear(64, bits), torch.nn.Tanh())
    opt = torch.optim.SGD(net.parameters(), lr=0.001, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=100, gamma=0.1)
    labels, eye = torch.eye(classes), torch.eye(classes)
    one_hot = torch.ones((1, classes))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scheduler.step() before optimizer.step(), as the reference does
        for _ in range(200):
            sched.step()
            code = net(labels)
            loss1 = torch.relu(code.mm(code.t()) - bits * eye).pow(2).sum() / (classes * classes)
            loss_b = one_hot.mm(code).pow(2).sum() / classes
            re = (torch.sign(code) - code).pow(2).sum() / classes
            total = loss1 + 0.05 * loss_b + 0.01 * re
            opt.zero_grad()
            total.backward()
            opt.step()
    expected = torch.sign(net(labels)).detach()
    assert torch.equal(label_codes(classes, bits, hidden=64, seed=3), expected)


# ------------------------------------------------------------------------------------------------ HyP²
class RefHyP:
    def __init__(self, proxies, threshold, beta=0.5):
        self.proxies = proxies.detach().clone().requires_grad_()
        self.threshold, self.beta = threshold, beta

    def __call__(self, x, batch_y, ind, step):
        cos = F.normalize(x, p=2, dim=1).mm(F.normalize(self.proxies, p=2, dim=1).T)
        pos, neg = 1 - cos, F.relu(cos - self.threshold)
        P_num, N_num = len(batch_y.nonzero()), len((batch_y == 0).nonzero())
        pos_term = torch.where(batch_y == 1, pos, torch.zeros_like(cos)).sum() / P_num
        neg_term = torch.where(batch_y == 0, neg, torch.zeros_like(cos)).sum() / N_num
        index = batch_y.sum(dim=1) > 1
        y_, x_ = batch_y[index], x[index]
        cos_sim = y_.mm(y_.T)
        if len((cos_sim == 0).nonzero()) == 0:
            reg = 0
        else:
            x_sim = F.normalize(x_, p=2, dim=1).mm(F.normalize(x_, p=2, dim=1).T)
            reg = torch.where(cos_sim == 0, self.beta * F.relu(x_sim - self.threshold),
                              torch.zeros_like(x_sim)).sum() / len((cos_sim == 0).nonzero())
        return pos_term + neg_term + reg


@pytest.mark.parametrize("multi", [False, True])
def test_hyp2_matches_the_reference(multi):
    from hashkit_plugins.losses.hhf import hhf_tau

    loss = _loss("hyp2")
    assert loss.tau == hhf_tau(L, C)[0]
    ref = RefHyP(loss.proxies, loss.tau)
    steps = _steps(multi=multi)
    if multi:
        assert any((s.labels.sum(1) > 1).sum() >= 2 for s in steps)
    check_sequence(loss, ref, steps, extra_leaves=lambda a, b: [("proxies", a.proxies, b.proxies)])


# ------------------------------------------------------------------------------------------------ CSQ
class RefCSQ:
    """DeepHash-pytorch CSQLoss (tanh inside, BCELoss, λ) or DSH_Analysis's (the network ends in tanh)."""

    def __init__(self, targets, fill01, lam, single_label=True):
        self.t, self.fill, self.lam, self.single = targets.clone(), fill01.clone(), lam, single_label

    def __call__(self, u, y, ind, step):
        u = u.tanh()
        if self.single:
            center = self.t[y.argmax(axis=1)]
        else:
            center_sum = y @ self.t
            random_center = self.fill.repeat(center_sum.shape[0], 1)
            center_sum[center_sum == 0] = random_center[center_sum == 0]
            center = 2 * (center_sum > 0).double() - 1
        center_loss = torch.nn.BCELoss()(0.5 * (u + 1), 0.5 * (center + 1))
        return center_loss + self.lam * (u.abs() - 1).pow(2).mean()


@pytest.mark.parametrize("lam,multi", [(1e-4, False), (0.1, True)])
def test_csq_matches_the_references(lam, multi):
    loss = _loss("csq", quantization=lam)
    ref = RefCSQ(loss.centers, (loss.multi_label_fill + 1) / 2, lam, single_label=not multi)
    steps = _steps(multi=multi)
    assert any((s.u.abs() > 9).any() for s in steps)  # saturated codes: BCE's log clamp at -100 matters
    check_sequence(loss, ref, steps)


# ------------------------------------------------------------------------------------------------ OrthoHash
def ref_orthohash(codebook, s=8.0, m=0.2):
    def ref(v, y, ind, step):
        cos = F.normalize(v, p=2, dim=1) @ F.normalize(codebook, p=2, dim=1).t()
        logits = s * (cos - m * y)  # cosine margin on the true class
        target = y / y.sum(dim=1, keepdim=True)  # label-smoothing normalisation (one-hot: plain CE)
        return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    return ref


@pytest.mark.parametrize("multi", [False, True])
def test_orthohash_matches_dsh_analysis(multi):
    loss = _loss("orthohash")
    check_sequence(loss, ref_orthohash(loss.centers.clone()), _steps(multi=multi))


# ------------------------------------------------------------------------------------------------ DCH
def ref_dch(gamma=20.0, lam=0.1):
    def d(hi, hj, K):
        inner = hi @ hj.t()
        norm = hi.pow(2).sum(dim=1, keepdim=True).pow(0.5) @ hj.pow(2).sum(dim=1, keepdim=True).pow(0.5).t()
        cos = inner / norm.clamp(min=0.0001)
        return (1 - cos.clamp(max=0.99)) * K / 2

    def ref(u, y, ind, step):
        K = u.shape[1]
        s = (y @ y.t() > 0).double()
        if (1 - s).sum() != 0 and s.sum() != 0:
            w = s * s.numel() / s.sum() + (1 - s) * s.numel() / (1 - s).sum()
        else:
            w = 1
        dij = d(u, u, K)
        cauchy = w * (s * torch.log(dij / gamma) + torch.log(1 + gamma / dij))
        quant = torch.log(1 + d(u.abs(), torch.ones(u.shape[0], K), K) / gamma)
        return cauchy.mean() + lam * quant.mean()
    return ref


def test_dch_pair_matches_deephash_pytorch():
    """DCH = cauchy_cross_entropy (diagonal included) + 0.1 x cauchy_quantization (cos clamp 0.99), raw u."""
    from hashkit.assemble import LossSet

    cce = _loss("cauchy_cross_entropy", include_diagonal=True, input="logits")
    cq = _loss("cauchy_quantization", cos_max=0.99, input="logits")
    pair = LossSet([("cauchy_cross_entropy", 1.0, cce), ("cauchy_quantization", 0.1, cq)])
    steps = sequence()[:6] + sequence()[-3:]  # includes a batch without positive pairs (unit weights)
    check_sequence(pair, ref_dch(), steps)


# ------------------------------------------------------------------------------------------------ ADSH
class RefADSH:
    """DeepHash-pytorch's inline ADSH step: V (n, L) over the database, S of the batch against it (soft)."""

    def __init__(self, V, db_labels, gamma=200.0):
        self.V, self.labels, self.gamma = V, db_labels, gamma

    def sim(self, y):
        S = (y @ self.labels.t() > 0).double()
        r = S.sum() / (1 - S).sum()
        return S * (1 + r) - r

    def __call__(self, u, y, ind, step):
        u = u.tanh()
        bit = u.shape[1]
        square = (u @ self.V.t() - bit * self.sim(y)).pow(2)
        quant = self.gamma * (self.V[ind] - u).pow(2)
        return (square.sum() + quant.sum()) / (self.V.shape[0] * u.size(0))


def test_adsh_matches_deephash_pytorch_without_rescaling():
    steps = _steps()
    g = torch.Generator().manual_seed(9)
    V = torch.randn(N, L, generator=g).sign()
    db_labels = torch.zeros(N, C)
    for s in sequence()[:6]:
        db_labels[s.indices] = s.labels
    ref = RefADSH(V, db_labels)
    loss = _loss("adsh", rescale_bits=0)
    check_sequence(loss, ref, steps, protocol=lambda s: {"B": V, "S": ref.sim(s.labels), "omega": s.indices})
