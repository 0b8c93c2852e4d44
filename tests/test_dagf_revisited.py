"""Revisited Oxford/Paris evaluation and datasets: literal references with junk, label encoding, safe loading."""

from __future__ import annotations

import fractions
import json
import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hashkit.assemble import make_component
from hashkit.errors import DataError
from hashkit.evaluation.revisited import (
    QueryGroundTruth,
    RevisitedGroundTruth,
    encode_targets,
    ground_truth_from_targets,
    revisited_map,
)
from hashkit.interfaces import RetrievalProblem
from hashkit.testing import check_component
from hashkit_plugins.datasets._landmarks import write_tiny_classic, write_tiny_revisited


def _literal(order: list[int], g: QueryGroundTruth, protocol: str, kappas=(1, 5, 10)):
    """Remove the ignored images from the ranked list, then walk it: trapezoidal AP, standard AP, mP@k."""
    positives = {"easy": set(g.easy), "medium": set(g.easy) | set(g.hard), "hard": set(g.hard)}[protocol]
    ignored = {"easy": set(g.junk) | set(g.hard), "medium": set(g.junk), "hard": set(g.junk) | set(g.easy)}[protocol]
    positives -= ignored
    if not positives:
        return None
    kept = [i for i in order if i not in ignored]
    hits, trap, std, ranks = 0, 0.0, 0.0, []
    for n, item in enumerate(kept, start=1):  # n = 1-based rank in the cleaned list
        if item in positives:
            before = 1.0 if n == 1 else hits / (n - 1)  # precision just before this positive
            hits += 1
            after = hits / n
            trap += (before + after) / 2 / len(positives)
            std += after / len(positives)
            ranks.append(n)
    last = ranks[-1]
    mp = [sum(1 for r in ranks if r <= min(k, last)) / min(k, last) for k in kappas]
    return trap, std, mp


GT = RevisitedGroundTruth((
    QueryGroundTruth(easy=(0, 3), hard=(5,), junk=(2,)),
    QueryGroundTruth(easy=(), hard=(1, 6), junk=(0, 7)),
    QueryGroundTruth(easy=(4,), hard=(), junk=()),
), num_database=8)


def _scores_for(orders: list[list[int]]) -> torch.Tensor:
    s = torch.zeros(len(orders), 8)
    for q, order in enumerate(orders):
        for r, item in enumerate(order):
            s[q, item] = 8 - r
    return s


ORDERS = [[2, 0, 5, 1, 3, 4, 6, 7], [0, 1, 2, 7, 6, 3, 4, 5], [7, 6, 5, 4, 3, 2, 1, 0]]


def test_hand_computed_values_for_each_protocol():
    res = revisited_map(_scores_for(ORDERS), GT, kappas=(1, 5))
    # query 0: easy list [0,1,3,4,6,7] -> positives at 1, 3; medium [0,5,1,3,...] -> 1, 2, 4; hard [5,...] -> 1
    ap0 = {"easy": (1 + (1 / 2 + 2 / 3) / 2) / 2, "medium": (1 + 1 + (2 / 3 + 3 / 4) / 2) / 3, "hard": 1.0}
    # query 1 (no easy): medium/hard list [1,2,6,3,4,5] -> positives at 1, 3; query 2: [7,6,5,4] -> 4; hard empty
    ap1 = (1 + (1 / 2 + 2 / 3) / 2) / 2
    ap2 = (0 + 1 / 4) / 2
    assert res["aps_easy"][0] == pytest.approx(ap0["easy"]) and res["aps_easy"][2] == pytest.approx(ap2)
    assert res["map_easy"] == pytest.approx((ap0["easy"] + ap2) / 2) and res["empty_easy"] == 1
    assert res["map_medium"] == pytest.approx((ap0["medium"] + ap1 + ap2) / 3) and res["empty_medium"] == 0
    assert res["map_hard"] == pytest.approx((ap0["hard"] + ap1) / 2) and res["empty_hard"] == 1
    # mP@5 (official cap at the last positive): medium q0 ranks 1,2,4 -> 3/4; q1 ranks 1,3 -> 2/3; q2 rank 4 -> 1/4
    assert res["mp@5_medium"] == pytest.approx((3 / 4 + 2 / 3 + 1 / 4) / 3)
    assert res["mp@1_hard"] == pytest.approx(1.0)


@pytest.mark.parametrize("protocol", ["easy", "medium", "hard"])
def test_equals_literal_reference_on_hand_made_gt(protocol):
    res = revisited_map(_scores_for(ORDERS), GT, [protocol])
    std = revisited_map(_scores_for(ORDERS), GT, [protocol], ap="standard")
    lit = [_literal(o, g, protocol) for o, g in zip(ORDERS, GT.queries)]
    valid = [x for x in lit if x is not None]
    assert res[f"map_{protocol}"] == pytest.approx(sum(x[0] for x in valid) / len(valid))
    assert std[f"map_{protocol}"] == pytest.approx(sum(x[1] for x in valid) / len(valid))
    for i, k in enumerate((1, 5, 10)):
        assert res[f"mp@{k}_{protocol}"] == pytest.approx(sum(x[2][i] for x in valid) / len(valid))
    assert res[f"empty_{protocol}"] == len(lit) - len(valid)


@st.composite
def _problems(draw):
    n = draw(st.integers(4, 12))
    nq = draw(st.integers(1, 4))
    queries = []
    for _ in range(nq):
        kind = draw(st.lists(st.sampled_from(["easy", "hard", "junk", "none"]), min_size=n, max_size=n))
        queries.append(QueryGroundTruth(*(tuple(i for i, k in enumerate(kind) if k == name)
                                          for name in ("easy", "hard", "junk"))))
    scores = draw(st.lists(st.integers(0, 5), min_size=n * nq, max_size=n * nq))  # ties resolved by index
    return RevisitedGroundTruth(tuple(queries), n), torch.tensor(scores, dtype=torch.float32).reshape(nq, n)


@settings(max_examples=60, deadline=None)
@given(_problems())
def test_equals_literal_reference_on_random_gt(problem):
    gt, scores = problem
    orders = [sorted(range(gt.num_database), key=lambda j: (-float(scores[q, j]), j)) for q in range(len(gt.queries))]
    res = revisited_map(scores, gt)
    for protocol in ("easy", "medium", "hard"):
        lit = [_literal(o, g, protocol) for o, g in zip(orders, gt.queries)]
        valid = [x for x in lit if x is not None]
        if valid:
            assert res[f"map_{protocol}"] == pytest.approx(sum(x[0] for x in valid) / len(valid))
        assert res[f"empty_{protocol}"] == len(lit) - len(valid)


def test_label_encoding_round_trip_and_metric_plugin():
    ql, dl = encode_targets(GT)
    assert ql.shape == (3, 9) and dl.shape == (8, 9)
    assert ground_truth_from_targets(ql, dl) == GT
    # generic label overlap sees easy + hard as relevant (Medium positives)
    assert ((ql @ dl.T) > 0)[0].nonzero().flatten().tolist() == [0, 3, 5]
    metric = make_component("metric", "revisited_map", {"per_query": True})
    q = torch.randn(3, 4)
    d = torch.randn(8, 4)
    out = metric(RetrievalProblem(q, d, ql, dl, kind="cosine"))
    cos = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(d, dim=1).T
    assert out["map_medium"] == pytest.approx(revisited_map(cos, GT)["map_medium"])
    qc, dc = torch.sign(q), torch.sign(d)
    ham = metric(RetrievalProblem(qc, dc, ql, dl, kind="hamming"))
    assert ham["map_hard"] == pytest.approx(revisited_map(qc @ dc.T, GT)["map_hard"])
    check_component("metric", "revisited_map")


@pytest.mark.parametrize("name", ["roxford5k", "rparis6k", "oxford5k", "paris6k"])
def test_dataset_conformance(name):
    check_component("dataset", name)


@pytest.mark.parametrize("fmt", ["pkl", "json"])
def test_revisited_dataset_reads_gnd_and_crops_queries(tmp_path, fmt):
    cfg = write_tiny_revisited(tmp_path, "gnd_roxford5k.pkl")
    if fmt == "json":
        data = pickle.loads((tmp_path / "gnd_roxford5k.pkl").read_bytes())  # the test's own file
        (tmp_path / "gnd_roxford5k.json").write_text(json.dumps(data))
        cfg["gnd"] = "gnd_roxford5k.json"
    data = make_component("dataset", "roxford5k", cfg)
    assert data.num_classes == 6
    assert list(data.split("database").items) == [f"img{i}.jpg" for i in range(6)]
    gt = ground_truth_from_targets(data.split("query").targets, data.split("database").targets)
    assert gt.queries[0] == QueryGroundTruth((0, 1), (2,), (3,)) and gt.queries[1] == QueryGroundTruth((4,), (), (0, 5))
    q = data.split("query")
    assert q.reader(q.items[0]).size == (8, 7)  # bbx [1, 1, 9, 8]
    assert data.split("database").reader("img0.jpg").size == (16, 12)
    with pytest.raises(DataError, match="official release has 70"):
        make_component("dataset", "roxford5k", {**cfg, "verify_counts": True})


def test_classic_dataset_reads_gt_files(tmp_path):
    cfg = write_tiny_classic(tmp_path, "oxbuild_images", "gt", "oxc1_", "flat")
    data = make_component("dataset", "oxford5k", cfg)
    gt = ground_truth_from_targets(data.split("query").targets, data.split("database").targets)
    assert gt.queries[0] == QueryGroundTruth((0, 1, 2), (), (3,))
    assert list(data.split("query").items) == ["paris_defense_000000.jpg"]
    assert data.split("query").reader(data.split("query").items[0]).size == (9, 9)


def test_ground_truth_pickle_with_a_global_is_refused(tmp_path):
    cfg = write_tiny_revisited(tmp_path, "gnd_rparis6k.pkl")
    evil = {"imlist": ["img0"], "qimlist": [], "gnd": [], "x": fractions.Fraction(1, 2)}
    (tmp_path / "gnd_rparis6k.pkl").write_bytes(pickle.dumps(evil))
    with pytest.raises(DataError, match="not allowed"):
        make_component("dataset", "rparis6k", cfg)


def test_ground_truth_pickle_with_numeric_numpy_arrays_is_read_and_object_arrays_refused(tmp_path):
    import numpy as np

    cfg = write_tiny_revisited(tmp_path, "gnd_rparis6k.pkl")
    data = pickle.loads((tmp_path / "gnd_rparis6k.pkl").read_bytes())
    for g in data["gnd"]:
        g["easy"] = np.asarray(g["easy"], dtype=np.int64)
        g["bbx"] = np.asarray(g["bbx"], dtype=np.float64)
    (tmp_path / "gnd_rparis6k.pkl").write_bytes(pickle.dumps(data))
    loaded = make_component("dataset", "rparis6k", cfg)
    gt = ground_truth_from_targets(loaded.split("query").targets, loaded.split("database").targets)
    assert gt.queries[0].easy == (0, 1)
    data["gnd"][0]["junk"] = np.asarray([3, "x"], dtype=object)
    (tmp_path / "gnd_rparis6k.pkl").write_bytes(pickle.dumps(data))
    with pytest.raises(DataError):
        make_component("dataset", "rparis6k", cfg)
