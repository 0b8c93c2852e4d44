"""Evaluation metrics against slow literal references (written here), hand-computed values and properties."""

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hashkit.errors import ContractError
from hashkit.evaluation import evaluate
from hashkit.evaluation.plots import plot_pr_curves, plot_precision_at_k
from hashkit.evaluation.report import format_table, results_to_json
from hashkit.interfaces import RetrievalProblem


# ---------------------------------------------------------------- literal references (one query at a time)
def ref_relevance(ql, dl):
    return [[any(a > 0 and b > 0 for a, b in zip(ql[i], dl[j])) for j in range(len(dl))] for i in range(len(ql))]


def ref_hamming(q, d):
    return [[sum(1 for a, b in zip(q[i], d[j]) if a != b) for j in range(len(d))] for i in range(len(q))]


def ref_ranking(dist_row, rel_row, drop_last=False):
    """Relevance in rank order: sort by (distance, index)."""
    order = sorted(range(len(dist_row)), key=lambda j: (dist_row[j], j))
    if drop_last:
        order = order[:-1]
    return [rel_row[j] for j in order], [dist_row[j] for j in order]


def ref_ap(ranked, k=None, norm="R"):
    hits, total = 0, 0.0
    limit = len(ranked) if k is None else min(k, len(ranked))
    for pos in range(1, limit + 1):
        if ranked[pos - 1]:
            hits += 1
            total += hits / pos
    r = sum(ranked)
    denom = {"R": r, "hits_in_topk": hits, "min_k_R": min(k or r, r)}[norm]
    return total / denom if denom else 0.0


def ref_tie_aware_ap(ranked, dists):
    """Expected AP by the per-position formula of McSherry & Najork, looping over positions."""
    r_total = sum(ranked)
    if not r_total:
        return 0.0
    total, p, c = 0.0, 0, 0
    for _, group in itertools.groupby(zip(dists, ranked), key=lambda t: t[0]):
        rels = [x for _, x in group]
        n, r = len(rels), sum(rels)
        for i in range(1, n + 1):
            inner = (i - 1) * (r - 1) / (n - 1) if n > 1 else 0.0
            total += (r / n) * (c + 1 + inner) / (p + i)
        p, c = p + n, c + r
    return total / r_total


def exhaustive_tie_aware(dists, rels):
    """Mean AP over every ordering consistent with the distances (all permutations inside tie groups)."""
    values = []
    for perm in itertools.permutations(range(len(dists))):
        if all(dists[perm[t]] <= dists[perm[t + 1]] for t in range(len(perm) - 1)):
            values.append(ref_ap([rels[j] for j in perm]))
    return sum(values) / len(values)


def problem(q, d, ql, dl, kind="hamming"):
    t = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32)  # noqa: E731
    return RetrievalProblem(t(q), t(d), t(ql), t(dl), kind=kind)


def random_problem(rng, nq, nd, bits, classes, multi=False):
    q = rng.choice([-1.0, 1.0], (nq, bits))
    d = rng.choice([-1.0, 1.0], (nd, bits))
    if multi:
        ql = (rng.random((nq, classes)) < 0.25).astype(float)
        dl = (rng.random((nd, classes)) < 0.25).astype(float)
    else:
        ql = np.eye(classes)[rng.integers(0, classes, nq)]
        dl = np.eye(classes)[rng.integers(0, classes, nd)]
    return q, d, ql, dl


# ---------------------------------------------------------------- hand-computed examples from the spec
def one_query(dist, rel):
    """A problem whose single query has the given Hamming distances and relevance to the database items."""
    bits = max(dist) + 1
    q = np.ones((1, bits))
    d = np.ones((len(dist), bits))
    for j, dj in enumerate(dist):
        d[j, :dj] = -1
    ql = np.array([[1.0, 0.0]])
    dl = np.array([[1.0, 0.0] if r else [0.0, 1.0] for r in rel])
    return problem(q, d, ql, dl)


def test_spec_tie_example():
    res = evaluate(one_query([0, 0, 1], [0, 1, 1]))
    assert res["map"] == pytest.approx((1 / 2 + 2 / 3) / 2, abs=1e-12)
    assert res["map_tie_aware"] == pytest.approx((0.75 + 2 / 3) / 2, abs=1e-12)
    assert res["map_tie_aware"] == pytest.approx(0.7083333333, abs=1e-9)


def test_spec_map_at_k_normalisations():
    plus_minus_plus = one_query([0, 1, 2], [1, 0, 1])
    plus_minus_minus = one_query([0, 1, 2, 3], [1, 0, 0, 1])
    for prob, hits, min_k_r, r in ((plus_minus_plus, 0.8333333333, 0.8333333333, 0.8333333333),
                                   (plus_minus_minus, 1.0, 0.5, 0.5)):
        got = {norm: evaluate(prob, topk=(3,), map_norm=norm)["map@3"] for norm in ("hits_in_topk", "min_k_R", "R")}
        assert got["hits_in_topk"] == pytest.approx(hits, abs=1e-9)
        assert got["min_k_R"] == pytest.approx(min_k_r, abs=1e-9)
        assert got["R"] == pytest.approx(r, abs=1e-9)


def test_zero_relevant_queries_both_rules():
    q = np.array([[1.0, 1.0], [1.0, -1.0]])
    d = np.array([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0]])
    ql = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # second query: class 2, absent from the database
    dl = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    counted = evaluate(problem(q, d, ql, dl))
    excluded = evaluate(problem(q, d, ql, dl), zero_relevant="exclude")
    first = ref_ap([1, 0, 1])  # ranking by distance 0, 1 (idx 1 and 2 tie at 1 -> index order)
    assert counted["no_relevant_queries"] == excluded["no_relevant_queries"] == 1
    assert counted["map"] == pytest.approx(first / 2, abs=1e-12)
    assert excluded["map"] == pytest.approx(first, abs=1e-12)


def test_semicon_parity_mode_on_tie_free_input():
    """drop_last_item + dot relevance equals a literal port of the official steps (torch.argsort, [:-1])."""
    rng = np.random.default_rng(3)
    bits, n = 16, 17
    q = np.ones((1, bits))
    d = np.ones((n, bits))
    for j, dj in enumerate(rng.permutation(n)):  # distances 0..16, all distinct: no ties
        d[j, :dj] = -1
    ql = np.eye(4)[[1]]
    dl = np.eye(4)[rng.integers(0, 4, n)]
    dl[[0, 5, 9]] = np.eye(4)[1]
    qt, dt = torch.tensor(q), torch.tensor(d)
    hamm = 0.5 * (bits - qt[0] @ dt.T)
    rel = (torch.tensor(ql)[0] @ torch.tensor(dl).T > 0).float()
    ranked = rel[torch.argsort(hamm)][:-1]
    count = torch.arange(1, int(ranked.sum()) + 1).double()
    index = torch.nonzero(ranked).squeeze(1).double() + 1
    official = float((count / index).mean())
    res = evaluate(problem(q, d, ql, dl), drop_last_item=True, relevance_rule="dot")
    assert res["map"] == pytest.approx(official, abs=1e-12)
    assert res["num_database"] == n - 1


# ---------------------------------------------------------------- random data with many ties vs references
@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("bits", [3, 12, 70])
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("kernel", ["numba", "numpy"])
def test_hamming_metrics_equal_literal_reference(multi, bits, drop_last, kernel, monkeypatch):
    from hashkit.evaluation import hamming_ranks

    if kernel == "numba" and not hamming_ranks.AVAILABLE:
        pytest.skip("numba (the fast extra) is not installed")
    monkeypatch.setenv("HASHKIT_HAMMING_KERNEL", kernel)
    rng = np.random.default_rng(bits * 7 + multi + 2 * drop_last)
    q, d, ql, dl = random_problem(rng, 13, 60, bits, 4, multi)
    ks = (1, 5, 17, 100)
    res = evaluate(problem(q, d, ql, dl), metrics=("map@k", "precision@k", "recall@k", "pr_curve",
                                                   "precision_radius"),
                   topk=ks, drop_last_item=drop_last, block_elements=150)  # several query blocks
    rel, dist = ref_relevance(ql, dl), ref_hamming(q, d)
    ranked = [ref_ranking(dist[i], rel[i], drop_last) for i in range(len(q))]
    assert res["map"] == pytest.approx(np.mean([ref_ap(r) for r, _ in ranked]), abs=1e-12)
    assert res["map_tie_aware"] == pytest.approx(np.mean([ref_tie_aware_ap(r, ds) for r, ds in ranked]), abs=1e-12)
    assert res["no_relevant_queries"] == sum(1 for r, _ in ranked if not any(r))
    for k in ks:
        assert res[f"map@{k}"] == pytest.approx(np.mean([ref_ap(r, k, "hits_in_topk") for r, _ in ranked]), abs=1e-12)
        assert res[f"precision@{k}"] == pytest.approx(np.mean([sum(r[:k]) / k for r, _ in ranked]), abs=1e-12)
        recall = [sum(r[:k]) / sum(r) if sum(r) else 0.0 for r, _ in ranked]
        assert res[f"recall@{k}"] == pytest.approx(np.mean(recall), abs=1e-12)
    # Hamming balls (the dropped item is gone from the database too)
    for radius in (0, 2, bits):
        prec, rec = [], []
        for r, ds in ranked:
            inside = [x for x, dd in zip(r, ds) if dd <= radius]
            prec.append(sum(inside) / len(inside) if inside else 0.0)
            rec.append(sum(inside) / sum(r) if sum(r) else 0.0)
        assert res["pr_curve"]["precision"][radius] == pytest.approx(np.mean(prec), abs=1e-12)
        assert res["pr_curve"]["recall"][radius] == pytest.approx(np.mean(rec), abs=1e-12)
        if radius == 2:
            assert res["precision@radius2"] == pytest.approx(np.mean(prec), abs=1e-12)
            assert res["empty_radius2_queries"] == sum(1 for r, ds in ranked if min(ds) > 2)


@pytest.mark.parametrize("norm", ["min_k_R", "R"])
def test_map_at_k_linear_norms_and_tie_aware_top_k(norm):
    rng = np.random.default_rng(11)
    q, d, ql, dl = random_problem(rng, 6, 7, 2, 3)
    res = evaluate(problem(q, d, ql, dl), metrics=("precision@k",), topk=(3, 5), map_norm=norm)
    rel, dist = ref_relevance(ql, dl), ref_hamming(q, d)
    for k in (3, 5):
        stable, tie_map, tie_prec = [], [], []
        for i in range(len(q)):
            r, _ = ref_ranking(dist[i], rel[i])
            stable.append(ref_ap(r, k, norm))
            # tie-aware expectations by enumerating orderings (each group permuted independently)
            groups = [list(g) for _, g in itertools.groupby(sorted(range(len(d)), key=lambda j: dist[i][j]),
                                                            key=lambda j: dist[i][j])]
            denom_r = sum(rel[i])
            vals_ap, vals_p, count = 0.0, 0.0, 0
            for combo in itertools.product(*[itertools.permutations(g) for g in groups]):
                order = [j for g in combo for j in g]
                rr = [rel[i][j] for j in order]
                hits, tot = 0, 0.0
                for pos in range(1, min(k, len(rr)) + 1):
                    if rr[pos - 1]:
                        hits += 1
                        tot += hits / pos
                denom = denom_r if norm == "R" else min(k, denom_r)
                vals_ap += tot / denom if denom else 0.0
                vals_p += hits / k
                count += 1
            tie_map.append(vals_ap / count)
            tie_prec.append(vals_p / count)
        assert res[f"map@{k}"] == pytest.approx(np.mean(stable), abs=1e-12)
        assert res[f"map@{k}_tie_aware"] == pytest.approx(np.mean(tie_map), abs=1e-12)
        assert res[f"precision@{k}_tie_aware"] == pytest.approx(np.mean(tie_prec), abs=1e-12)


@pytest.mark.parametrize("drop_last", [False, True])
def test_cosine_metrics_equal_literal_reference(drop_last):
    rng = np.random.default_rng(5)
    base = rng.integers(-2, 3, (6, 5)).astype(float)  # few distinct descriptors: many exact ties
    q = base[rng.integers(0, 6, 8)]
    d = base[rng.integers(0, 6, 40)] * rng.integers(1, 3, (40, 1))  # scaled copies tie in cosine too
    ql = (rng.random((8, 3)) < 0.4).astype(float)
    dl = (rng.random((40, 3)) < 0.4).astype(float)
    res = evaluate(problem(q, d, ql, dl, kind="cosine"), topk=(5,), drop_last_item=drop_last)
    rel = ref_relevance(ql, dl)
    aps, tie = [], []
    for i in range(len(q)):
        qn = math.sqrt(sum(x * x for x in q[i])) or 1.0
        sims = []
        for j in range(len(d)):
            dn = math.sqrt(sum(x * x for x in d[j])) or 1.0
            sims.append(sum(a * b for a, b in zip(q[i], d[j])) / (qn * dn))
        # rank by decreasing similarity; compare with a tolerance so scaled copies tie exactly
        keyed = [round(-s, 12) for s in sims]
        r, ds = ref_ranking(keyed, rel[i], drop_last)
        aps.append(ref_ap(r))
        tie.append(ref_tie_aware_ap(r, ds))
    assert res["map"] == pytest.approx(np.mean(aps), abs=1e-12)
    assert res["map_tie_aware"] == pytest.approx(np.mean(tie), abs=1e-12)


# ---------------------------------------------------------------- properties
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 6), bits=st.integers(1, 3), seed=st.integers(0, 2**31))
def test_tie_aware_equals_mean_over_all_orderings(n, bits, seed):
    rng = np.random.default_rng(seed)
    dists = sorted(rng.integers(0, bits + 1, n).tolist())
    rels = rng.integers(0, 2, n).tolist()
    if not any(rels):
        rels[0] = 1
    res = evaluate(one_query(dists, rels))
    assert res["map_tie_aware"] == pytest.approx(exhaustive_tie_aware(dists, rels), abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), multi=st.booleans())
def test_tie_aware_map_invariant_to_permuting_the_database(seed, multi):
    rng = np.random.default_rng(seed)
    q, d, ql, dl = random_problem(rng, 7, 30, 5, 3, multi)
    perm = rng.permutation(len(d))
    a = evaluate(problem(q, d, ql, dl))
    b = evaluate(problem(q, d[perm], ql, dl[perm]))
    assert a["map_tie_aware"] == pytest.approx(b["map_tie_aware"], abs=1e-12)
    assert a["no_relevant_queries"] == b["no_relevant_queries"]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), classes=st.integers(2, 6), bits=st.sampled_from([3, 8, 24]))
def test_perfect_ranking_has_map_one(seed, classes, bits):
    rng = np.random.default_rng(seed)
    centres = rng.choice([-1.0, 1.0], (classes, bits))
    if len({tuple(c) for c in centres}) < classes:  # classes need distinct codes
        return
    yq, yd = rng.integers(0, classes, 5), rng.integers(0, classes, 30)
    yq[:] = yd[0]  # every query's class is present in the database
    res = evaluate(problem(centres[yq], centres[yd], np.eye(classes)[yq], np.eye(classes)[yd]),
                   metrics=("map@k",), topk=(4,))
    assert res["map"] == pytest.approx(1.0, abs=1e-12)
    assert res["map_tie_aware"] == pytest.approx(1.0, abs=1e-12)
    assert res["map@4"] == pytest.approx(1.0, abs=1e-12)


def test_streaming_and_threads_do_not_change_results():
    rng = np.random.default_rng(9)
    q, d, ql, dl = random_problem(rng, 50, 200, 12, 5, multi=True)
    prob = problem(q, d, ql, dl)
    opts = dict(metrics=("map@k", "precision@k", "pr_curve"), topk=(10,))
    whole = evaluate(prob, block_elements=1 << 20, num_threads=1, **opts)
    blocks = evaluate(prob, block_elements=450, num_threads=2, **opts)
    curve_a, curve_b = whole.pop("pr_curve"), blocks.pop("pr_curve")
    assert whole == blocks  # per-query values are summed in query order: bit-identical
    for key in ("precision", "recall"):  # sums of block sums: equal up to rounding
        assert curve_a[key] == pytest.approx(curve_b[key], abs=1e-14)
    again = evaluate(prob, block_elements=450, num_threads=2, **opts)
    assert again.pop("pr_curve") == curve_b and again == blocks  # same blocks: bit-identical with threads


def test_explicit_relevance_matrix_and_errors():
    rng = np.random.default_rng(2)
    q, d, ql, dl = random_problem(rng, 4, 10, 6, 2)
    rel = torch.tensor(ref_relevance(ql, dl))
    a = evaluate(problem(q, d, ql, dl))
    b = evaluate(RetrievalProblem(torch.tensor(q), torch.tensor(d), relevance=rel))
    assert a["map"] == b["map"] and b["relevance"] == "matrix"
    with pytest.raises(ContractError, match="±1"):
        evaluate(problem(np.zeros((1, 6)), d, ql[:1], dl))
    with pytest.raises(ContractError, match="unknown metric"):
        evaluate(problem(q, d, ql, dl), metrics=("ndcg",))
    with pytest.raises(ContractError, match="rows"):
        evaluate(problem(q, d, ql[:2], dl))


def test_report_table_json_and_plots(tmp_path):
    rng = np.random.default_rng(4)
    results = {}
    for bits in (12, 24):
        q, d, ql, dl = random_problem(rng, 10, 40, bits, 3)
        results[bits] = evaluate(problem(q, d, ql, dl), metrics=("precision@k", "pr_curve"), topk=(5, 10))
    text = format_table(results, title="demo")
    lines = text.splitlines()
    assert lines[0] == "demo" and lines[1].split()[:3] == ["bits", "map", "map_tie_aware"]
    assert lines[3].split()[0] == "12" and f"{results[12]['map']:.4f}" in lines[3]
    assert "map_at_k_norm=hits_in_topk" in text
    import json

    assert json.loads(results_to_json(results))["24"]["map"] == results[24]["map"]
    for fn, name in ((plot_pr_curves, "pr.png"), (plot_precision_at_k, "pk.png")):
        out = fn(results, tmp_path / name)
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@settings(max_examples=60, deadline=None)
@given(p=st.integers(0, 300_000), m=st.integers(0, 3000))
def test_harmonic_difference_is_accurate_for_large_offsets(p, m):
    from hashkit.evaluation.average_precision import harmonic_difference

    exact = math.fsum(1.0 / k for k in range(p + 1, p + m + 1))
    got = float(harmonic_difference(np.array([p]), np.array([m]))[0])
    assert got == pytest.approx(exact, rel=1e-13, abs=0.0)
