"""FDH-MFE losses against literal references written from the formulas (the papers and official code cited in the loss modules), values and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashkit.assemble import make_component
from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, LossInputs



#: these references run in float64 (the fixture restores the default afterwards)
pytestmark = pytest.mark.usefixtures("float64_default")


def _inputs(b=8, L=12, C=4, seed=0, multi=False):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, L, generator=g, dtype=torch.float64)
    y = torch.arange(b) % C
    labels = torch.nn.functional.one_hot(y, C).double()
    if multi:
        labels[0, (y[0] + 1) % C] = 1.0
    return logits, labels


def _cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / (torch.sqrt(sum(x * x for x in a)) * torch.sqrt(sum(y * y for y in b)))


def _grad_check(loss, ref_fn, u_leaf, extra_leaves=()):
    """loss(u) and ref(u) agree in value and in gradient w.r.t. u (and the extra leaves).

    The losses compute in float32 (interface contract); the references run in float64.
    """
    value = loss
    ref = ref_fn()
    assert value.item() == pytest.approx(ref.item(), rel=2e-6, abs=1e-7)
    leaves = [u_leaf, *extra_leaves]
    g1 = torch.autograd.grad(value, leaves, retain_graph=True)
    g2 = torch.autograd.grad(ref, leaves)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-6)
    assert any(g.abs().sum() > 0 for g in g1), "loss has no gradient"


def _anchor_reference(codes, proxies, labels, pos_fn, neg_fn):
    """Literal Proxy-Anchor sums over proxies and samples with Python loops."""
    b, C = labels.shape
    pos_total, neg_total, n_pos = 0.0, 0.0, 0
    for p in range(C):
        pos_sum, neg_sum, has_pos = 0.0, 0.0, False
        for i in range(b):
            c = _cos(codes[i], proxies[p])
            if labels[i, p] > 0:
                pos_sum = pos_sum + pos_fn(c)
                has_pos = True
            else:
                neg_sum = neg_sum + neg_fn(c)
        if has_pos:
            pos_total = pos_total + torch.log(1 + pos_sum)
            n_pos += 1
        neg_total = neg_total + torch.log(1 + neg_sum)
    return pos_total / n_pos + neg_total / C


@pytest.mark.parametrize("multi", [False, True])
def test_proxy_anchor_matches_formula(multi):
    logits, labels = _inputs(C=5, multi=multi)  # class 4 has no sample: P+ < P
    loss = make_component("loss", "proxy_anchor", {"quantization": 0.3, "uniformity": 0.7},
                          BuildContext(code_length=12, num_classes=5)).double()
    u_leaf = logits.requires_grad_()
    u = torch.tanh(u_leaf)
    res = loss(LossInputs(codes=u, labels=labels))
    P = loss.proxies
    a, d = 32.0, 0.1

    def ref():
        uu = torch.tanh(u_leaf)
        v = _anchor_reference(uu, P, labels, lambda c: torch.exp(-a * (c - d)), lambda c: torch.exp(a * (c + d)))
        q = sum((abs(uu[i, k]) - 1) ** 2 for i in range(uu.shape[0]) for k in range(uu.shape[1])) / uu.numel()
        # uniformity: log mean_{i≠j} exp(-2 ||p̂_i - p̂_j||²)
        pn = [P[i] / P[i].norm() for i in range(P.shape[0])]
        terms = [torch.exp(-2.0 * ((pn[i] - pn[j]) ** 2).sum()) for i in range(len(pn)) for j in range(len(pn)) if i != j]
        unif = torch.log(sum(terms) / len(terms))
        return v + 0.3 * q + 0.7 * unif

    _grad_check(res.value, ref, u_leaf, (P,))


@pytest.mark.parametrize("multi", [False, True])
def test_hhf_matches_formula(multi):
    logits, labels = _inputs(C=5, multi=multi)
    loss = make_component("loss", "hhf", {"tau": 0.25, "beta": 0.01}, BuildContext(code_length=12, num_classes=5)).double()
    u_leaf = logits.requires_grad_()
    res = loss(LossInputs(codes=torch.tanh(u_leaf), labels=labels))
    P = loss.proxies
    a, d, tau = 16.0, 0.2, 0.25

    def ref():
        uu = torch.tanh(u_leaf)
        v = _anchor_reference(uu, P, labels, lambda c: torch.exp(a * torch.relu(1 - d - c)) - 1,
                              lambda c: torch.exp(a * torch.relu(c - tau - d)) - 1)
        quant = sum((torch.sign(uu[i, k]) - uu[i, k]) ** 2 for i in range(uu.shape[0]) for k in range(uu.shape[1]))
        return v + 0.01 * quant

    _grad_check(res.value, ref, u_leaf, (P,))


def test_hhf_tau_table_matches_spec():
    from hashkit_plugins.losses.hhf import hhf_tau

    spec = {  # HHF codetable.xlsx (JerryXu0129/HHF @ 7cf5ab6c): classes -> {L: tau}
        200: {12: 0.5, 24: 0.3333, 32: 0.25, 48: 0.1667},
        196: {12: 0.5, 24: 0.3333, 32: 0.25, 48: 0.1667},
        120: {12: 0.3333, 24: 0.1667, 32: 0.125, 48: 0.0833},
        100: {12: 0.3333, 24: 0.1667, 32: 0.125, 48: 0.0833},
        101: {12: 0.3333, 24: 0.1667, 32: 0.125, 48: 0.0833},
    }
    for classes, row in spec.items():
        for L, tau in row.items():
            got, source = hhf_tau(L, classes)
            assert got == pytest.approx(tau, abs=5e-5), (classes, L)
            assert source.startswith("code table")
    loss = make_component("loss", "hhf", {}, BuildContext(code_length=24, num_classes=200))
    assert loss.tau == pytest.approx(1 / 3) and loss.tau_source.startswith("code table")


def test_hhf_tau_rule_for_other_cases():
    from hashkit_plugins.losses.hash_centers import build_centers, min_pairwise_distance
    from hashkit_plugins.losses.hhf import hhf_tau

    for L, classes in [(12, 10), (16, 10), (16, 555), (64, 292)]:
        got, source = hhf_tau(L, classes)
        d = min_pairwise_distance(build_centers(classes, L))
        assert got == pytest.approx(1 - 2 * d / L) and source.startswith("hashkit codebook")
    # 10 classes fit in the Paley rows of order 12: distance L/2, tau 0
    assert hhf_tau(12, 10)[0] == pytest.approx(0.0)


def test_hhf_tau_for_292_and_555_classes_from_linear_codes():
    from hashkit_plugins.losses.hhf import hhf_tau

    # tau = 1 - 2 d / L with d = 2 (even weight), 8 (Golay), 12 (BCH), 20 / 19 (punctured BCH)
    expected = {292: {12: 2 / 3, 24: 1 / 3, 32: 0.25, 48: 1 / 6}, 555: {12: 2 / 3, 24: 1 / 3, 32: 0.25, 48: 5 / 24}}
    for classes, row in expected.items():
        for L, tau in row.items():
            got, source = hhf_tau(L, classes)
            assert got == pytest.approx(tau), (classes, L)
            assert source.startswith("hashkit linear code")
    # tighter than the codebook rule they replace (0.667 / 0.5 / 0.5 / 0.333 for 555 classes)
    assert all(hhf_tau(L, 555)[0] < old for L, old in [(24, 0.5), (32, 0.5), (48, 1 / 3)])


@pytest.mark.parametrize("m", [9, 10])
@pytest.mark.parametrize("L", [12, 24, 32, 48])
def test_linear_codes_reach_their_minimum_distance(m, L):
    from hashkit_plugins.losses._linear_codes import CONSTRUCTED_DMIN, codeword_weights, construction

    rows = construction(L, m)[1]()
    assert len(rows) == m and all(0 < r < 1 << L for r in rows)
    weights = codeword_weights(rows)  # all 2^m codewords, enumerated
    assert (weights[1:] > 0).all()  # the rows are independent: 2^m distinct codewords
    assert weights[1:].min() == CONSTRUCTED_DMIN[m][L]


def test_parent_codes_have_their_textbook_weight_distributions():
    from hashkit_plugins.losses._linear_codes import (GOLAY_23, bch_generator, codeword_weights, cyclic_rows,
                                                      with_parity)

    def distribution(rows):
        values, counts = np.unique(codeword_weights(rows), return_counts=True)
        return dict(zip(values.tolist(), counts.tolist()))

    # extended Golay [24, 12, 8]: 1, 759, 2576, 759, 1 (MacWilliams & Sloane, ch. 2)
    assert distribution(with_parity(cyclic_rows(GOLAY_23, 23, 12), 23)) == {0: 1, 8: 759, 12: 2576, 16: 759, 24: 1}
    # BCH (31, 11), t = 5: generator 5423325 (octal) in the usual tables; extended: 1, 496, 1054, 496, 1
    g = bch_generator(5, 0b100101, 11)
    assert g == 0o5423325
    assert distribution(with_parity(cyclic_rows(g, 31, 11), 31)) == {0: 1, 12: 496, 16: 1054, 20: 496, 32: 1}
    # extended BCH [64, 10, 28] (BCH (63, 10), t = 13), the code punctured for L = 48
    assert min(codeword_weights(with_parity(cyclic_rows(bch_generator(6, 0b1000011, 24), 63, 10), 63))[1:]) == 28


def test_csq_matches_formula():
    logits, labels = _inputs(L=16, C=4, multi=True)
    loss = make_component("loss", "csq", {"quantization": 0.05}, BuildContext(code_length=16, num_classes=4)).double()
    u_leaf = logits.requires_grad_()
    res = loss(LossInputs(codes=torch.tanh(u_leaf), labels=labels))
    C = loss.centers.double()
    fill = loss.multi_label_fill.double()

    def ref():
        uu = torch.tanh(u_leaf)
        total, q = 0.0, 0.0
        b, L = uu.shape
        for i in range(b):
            s = sum(C[c] for c in range(C.shape[0]) if labels[i, c] > 0)
            centre = [fill[k] if s[k] == 0 else torch.sign(s[k]) for k in range(L)]
            for k in range(L):
                p, t = (uu[i, k] + 1) / 2, (centre[k] + 1) / 2
                total = total - (t * torch.log(p) + (1 - t) * torch.log(1 - p))
                q = q + (abs(uu[i, k]) - 1) ** 2
        return total / (b * L) + 0.05 * q / (b * L)

    _grad_check(res.value, ref, u_leaf)


def test_orthohash_matches_formula():
    logits, labels = _inputs(L=12, C=4)
    loss = make_component("loss", "orthohash", {"quantization": 0.1}, BuildContext(code_length=12, num_classes=4)).double()
    v_leaf = logits.requires_grad_()
    res = loss(LossInputs(logits=v_leaf, codes=torch.tanh(v_leaf), labels=labels))
    C = loss.centers.double()

    def ref():
        total, q = 0.0, 0.0
        b = v_leaf.shape[0]
        for i in range(b):
            z = [8.0 * (_cos(v_leaf[i], C[c]) - 0.2 * labels[i, c]) for c in range(C.shape[0])]
            lse = torch.logsumexp(torch.stack(z), 0)
            y = int(labels[i].argmax())
            total = total + (lse - z[y])
            q = q + 1 - _cos(v_leaf[i], torch.sign(v_leaf[i]).detach())
        return total / b + 0.1 * q / b

    _grad_check(res.value, ref, v_leaf)


def _dist(a, b, kind):
    if kind == "cosine":
        return 1 - _cos(a, b)
    return (len(a) - sum(x * y for x, y in zip(a, b))) / 2


def _triplet_reference(u, labels, kind, m, mining, soft=False):
    b = u.shape[0]
    same = lambda i, j: bool((labels[i] * labels[j]).sum() > 0)  # noqa: E731
    h = (lambda t: torch.log(1 + torch.exp(t))) if soft else (lambda t: torch.relu(t))
    D = [[_dist(u[i], u[j], kind) for j in range(b)] for i in range(b)]
    if mining == "batch_hard":
        terms = []
        for a in range(b):
            ps = [D[a][p] for p in range(b) if p != a and same(a, p)]
            ns = [D[a][n] for n in range(b) if not same(a, n)]
            if ps and ns:
                terms.append(h(max(ps) - min(ns) + m))
        return sum(terms) / len(terms)
    if mining == "batch_all":
        terms = [h(D[a][p] - D[a][n] + m) for a in range(b) for p in range(b) for n in range(b)
                 if p != a and same(a, p) and not same(a, n)]
        active = [t for t in terms if t > 0]
        return sum(active) / len(active)
    terms = []
    for a in range(b):
        for p in range(b):
            if p == a or not same(a, p):
                continue
            ns = [D[a][n] for n in range(b) if not same(a, n)]
            if not ns:
                continue
            outside = [x for x in ns if x > D[a][p]]
            dn = min(outside) if outside else max(ns)
            terms.append(h(D[a][p] - dn + m))
    return sum(terms) / len(terms)


@pytest.mark.parametrize("mining", ["batch_hard", "batch_all", "semi_hard"])
@pytest.mark.parametrize("distance,params,margin", [
    ("cosine", {"margin": 0.2}, 0.2),
    ("hamming", {"margin_bits": 3.0}, 3.0),
    ("cosine", {"margin_bits": 3.0}, 2 * 3.0 / 12),
])
def test_triplet_matches_formula(mining, distance, params, margin):
    logits, labels = _inputs(b=9, L=12, C=3, seed=3)
    loss = make_component("loss", "triplet", {"mining": mining, "distance": distance, **params},
                          BuildContext(code_length=12)).double()
    u_leaf = logits.requires_grad_()
    res = loss(LossInputs(codes=torch.tanh(u_leaf), labels=labels))
    _grad_check(res.value, lambda: _triplet_reference(torch.tanh(u_leaf), labels, distance, margin, mining), u_leaf)


def test_triplet_soft_margin_and_empty_batch():
    logits, labels = _inputs(b=6, L=12, C=3, seed=5)
    loss = make_component("loss", "triplet", {"soft": True}, BuildContext(code_length=12)).double()
    u_leaf = logits.requires_grad_()
    res = loss(LossInputs(codes=torch.tanh(u_leaf), labels=labels))
    _grad_check(res.value, lambda: _triplet_reference(torch.tanh(u_leaf), labels, "cosine", 0.0, "batch_hard", True),
                u_leaf)
    # all samples of different classes: no positive, loss 0 with a graph
    labels = torch.eye(6)
    res = loss(LossInputs(codes=torch.tanh(u_leaf), labels=labels))
    assert res.value.item() == 0.0 and res.value.requires_grad


def test_triplet_reads_extras():
    logits, labels = _inputs(b=6, L=12, C=3)
    loss = make_component("loss", "triplet", {"input": "extras.view_codes"}, BuildContext(code_length=12))
    assert loss.requires == ("extras.view_codes", "labels")
    res = loss(LossInputs(codes=None, labels=labels, extras={"view_codes": torch.tanh(logits)}))
    ref = _triplet_reference(torch.tanh(logits), labels, "cosine", 0.2, "batch_hard")
    assert res.value.item() == pytest.approx(float(ref))


@pytest.mark.parametrize("distance", ["cosine", "hamming"])
def test_triplet_fg_bg_matches_formula(distance):
    logits, labels = _inputs(b=8, L=12, C=3, seed=7)
    background = torch.randn(8, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    loss = make_component("loss", "triplet", {"mining": "fg_bg", "distance": distance, "margin": 0.3},
                          BuildContext(code_length=12)).double()
    assert loss.requires == ("codes", "labels", "extras.background.codes")
    u_leaf, b_leaf = logits.requires_grad_(), background.requires_grad_()

    def reference():
        u, bg = torch.tanh(u_leaf), torch.tanh(b_leaf)
        terms = []
        for a in range(8):  # farthest positive vs the anchor's own background code
            ps = [_dist(u[a], u[p], distance) for p in range(8) if p != a and (labels[a] * labels[p]).sum() > 0]
            if ps:
                terms.append(torch.relu(max(ps) - _dist(u[a], bg[a], distance) + 0.3))
        return sum(terms) / len(terms)

    res = loss(LossInputs(codes=torch.tanh(u_leaf), labels=labels,
                          extras={"background.codes": torch.tanh(b_leaf)}))
    (grad_background,) = torch.autograd.grad(res.value, b_leaf, retain_graph=True)
    assert grad_background.abs().sum() > 0  # the background codes are pushed away from their anchors
    _grad_check(res.value, reference, u_leaf, (b_leaf,))
    with pytest.raises(ContractError, match="background_view = true"):
        loss(LossInputs(codes=torch.tanh(logits), labels=labels))


@pytest.mark.parametrize("form", ["l2", "sign_gap", "log_cosh"])
def test_quantization_matches_formula(form):
    logits, _ = _inputs(b=5, L=8)
    loss = make_component("loss", "quantization", {"form": form}).double()
    u_leaf = logits.requires_grad_()
    res = loss(LossInputs(codes=torch.tanh(u_leaf)))

    def ref():
        uu = torch.tanh(u_leaf)
        b, L = uu.shape
        if form == "l2":
            return sum((abs(uu[i, k]) - 1) ** 2 for i in range(b) for k in range(L)) / (b * L)
        if form == "sign_gap":
            return sum((uu[i, k] - (1.0 if uu[i, k] >= 0 else -1.0)) ** 2 for i in range(b) for k in range(L)) / b
        return sum(torch.log(torch.cosh(abs(uu[i, k]) - 1)) for i in range(b) for k in range(L)) / (b * L)

    _grad_check(res.value, ref, u_leaf)
