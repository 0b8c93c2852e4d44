"""The four open-set protocols on a small constructed case computed by hand, and mAP@k as the DSH_Analysis
reference code computes it (a literal transcription of its per-query loop, written here from the spec)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import training_helpers as th
from hashkit.errors import ContractError
from hashkit.evaluation import evaluate
from hashkit.interfaces import ClassSplit, OpenSet, RetrievalProblem, Split
from hashkit.recipe import load_recipe
from hashkit.training.evaluate import Encoded
from hashkit.training.open_set_eval import evaluate_open_set

P, M = 1.0, -1.0

# C = 4 classes, C_s = 2 seen (0, 1), unseen 2, 3; L = 4 bits
LABELS = {
    "q1": [0, 2],      # seen query (class 0) that also carries unseen label 2
    "q2": [3],         # unseen query
    "d1": [0], "d2": [1, 2],          # seen database rows = the training rows
    "u1": [3], "u2": [3], "u3": [2],  # unseen database rows
}
CODES = {
    "q1": [P, P, P, P], "q2": [M, M, M, M],
    "u1": [P, P, P, P], "u2": [M, M, M, P], "u3": [M, M, P, P],
    "e1": [M, M, M, P], "e2": [P, M, P, P],   # network codes of d1, d2 (encoded database)
    "l1": [P, P, P, M], "l2": [P, P, M, M],   # the protocol's codes of d1, d2 (learned / label database)
}
# Hamming distances and relevance, ranked by distance then database index ("@all": d1, d2, u1, u2, u3):
#   seen@seen (columns 0, 1 only: d2 is not relevant to q1)
#     learned: d1 1+, d2 2-                                   -> AP 1
#     encoded: e2 1-, e1 3+                                   -> AP 1/2
#   seen@all (all columns: d2 and u3 share label 2 with q1)
#     learned: u1 0-, d1 1+, d2 2+, u3 2+, u2 3-              -> (1/2 + 2/3 + 3/4) / 3
#     encoded: u1 0-, e2 1+, u3 2+, e1 3+, u2 3-              -> (1/2 + 2/3 + 3/4) / 3
#   unseen@unseen: u2 1+, u3 2-, u1 4+                        -> (1 + 2/3) / 2   (always encoded)
#   unseen@all
#     learned: u2 1+, d2 2-, u3 2-, d1 3-, u1 4+              -> (1 + 2/5) / 2
#     encoded: e1 1-, u2 1+, u3 2-, e2 3-, u1 4+              -> (1/2 + 2/5) / 2
HAND = {
    ("seen@seen", "learned"): 1.0, ("seen@seen", "encoded"): 0.5,
    ("seen@all", "learned"): (1 / 2 + 2 / 3 + 3 / 4) / 3, ("seen@all", "encoded"): (1 / 2 + 2 / 3 + 3 / 4) / 3,
    ("unseen@unseen", "learned"): (1 + 2 / 3) / 2, ("unseen@unseen", "encoded"): (1 + 2 / 3) / 2,
    ("unseen@all", "learned"): (1 + 2 / 5) / 2, ("unseen@all", "encoded"): (1 / 2 + 2 / 5) / 2,
}


def _split(names):
    targets = torch.zeros(len(names), 4)
    for i, n in enumerate(names):
        targets[i, LABELS[n]] = 1.0
    return Split(items=list(names), targets=targets, reader=None)


def _open_set():
    classes = ClassSplit(seen=(0, 1), unseen=(2, 3), seen_fraction=0.5, rule="last 2 of 4")
    seen_db = _split(["d1", "d2"])
    return OpenSet(classes=classes, class_names=("a", "b", "c", "d"), query_seen=_split(["q1"]),
                   database_seen=seen_db, train_seen=seen_db, query_unseen=_split(["q2"]),
                   database_unseen=_split(["u1", "u2", "u3"]))


def fake_encode(model, split, recipe, device, *, limit=0, descriptors=False, progress=False, desc=""):
    """The 'network': codes by item name (the encoded database uses e1, e2 for d1, d2)."""
    names = [{"d1": "e1", "d2": "e2"}.get(n, n) for n in split.items]
    return Encoded(labels=split.targets.clone(), codes=torch.tensor([CODES[n] for n in names]))


class _Model:
    hash_head = object()


def _recipe(kind_list):
    return load_recipe(th.tiny_recipe(eval={"database": kind_list}))


@pytest.mark.parametrize("provided", ["learned", "label"])
def test_four_databases_by_hand(provided):
    learned = (torch.tensor([CODES["l1"], CODES["l2"]]), _split(["d1", "d2"]).targets)
    res = evaluate_open_set(_Model(), _recipe([provided, "encoded"]), _open_set(), learned=learned,
                            provided_kind=provided, device=torch.device("cpu"), encode=fake_encode)
    for (protocol, kind), value in HAND.items():
        kind = provided if kind == "learned" else kind
        got = res.protocols[protocol][kind]
        assert got["map"] == pytest.approx(value, abs=1e-12), (protocol, kind)
    assert res.scores == res.protocols["seen@seen"]
    assert res.protocols["unseen@all"][provided]["database_parts"] == f"D_s {provided} + D_u encoded"
    assert res.protocols["seen@all"]["encoded"]["num_database"] == 5
    assert res.protocols["unseen@unseen"]["encoded"]["num_database"] == 3
    # the codes written to codes.safetensors: the protocol's seen part, the network's unseen part
    assert torch.equal(res.codes[f"database_{provided}"], learned[0])
    assert torch.equal(res.codes["database_unseen"], torch.tensor([CODES[n] for n in ("u1", "u2", "u3")]))


def test_database_kind_must_match_the_protocol():
    learned = (torch.tensor([CODES["l1"], CODES["l2"]]), _split(["d1", "d2"]).targets)
    with pytest.raises(ContractError, match="provides 'label'"):
        evaluate_open_set(_Model(), _recipe(["learned"]), _open_set(), learned=learned, provided_kind="label",
                          device=torch.device("cpu"), encode=fake_encode)
    with pytest.raises(ContractError, match="provides no database codes"):
        evaluate_open_set(_Model(), _recipe(["learned"]), _open_set(), learned=None, provided_kind="encoded",
                          device=torch.device("cpu"), encode=fake_encode)


def test_training_run_reports_four_protocols(tmp_path):
    """End to end: a seen/unseen demo split through the trainer; the report and codes hold all four protocols,
    and seen@seen equals a plain evaluation of the seen query/database splits."""
    from hashkit.training import train
    from hashkit.training.checkpoint import load_checkpoint

    recipe = th.adsh_recipe(protocol={"name": "adsh", "rounds": 1, "epochs": 1, "num_samples": 16, "gamma": 200.0},
                            data={"dataset": {"name": "demo", "train_per_class": 3, "query_per_class": 2,
                                              "seen_fraction": 0.8}, "batch_size": 8})
    report = train(recipe, tmp_path / "run")
    res = report["results"]["8"]
    assert set(res["protocols"]["last"]) == {"seen@seen", "seen@all", "unseen@unseen", "unseen@all"}
    assert res["protocols"]["last"]["seen@seen"] == res["last"]
    assert res["protocols"]["last"]["unseen@all"]["learned"]["num_database"] == 30
    codes, _ = load_checkpoint(tmp_path / "run" / "L8" / "codes.safetensors")
    again = evaluate(RetrievalProblem(codes["last.query_unseen"],
                                      torch.cat([codes["last.database_learned"], codes["last.database_unseen"]]),
                                      codes["last.query_unseen_labels"],
                                      torch.cat([codes["last.database_learned_labels"],
                                                 codes["last.database_unseen_labels"]])))
    assert again["map"] == pytest.approx(res["protocols"]["last"]["unseen@all"]["learned"]["map"], abs=1e-12)
    assert "unseen@all learned" in (tmp_path / "run" / "report.txt").read_text()
    # the untrained baseline (hashkit baseline) reports the same four protocols
    from hashkit.training.baseline import baseline

    untrained = baseline(recipe)["results"]["8"]
    assert untrained["protocols"]["last"]["seen@seen"] == untrained["last"]
    assert untrained["protocols"]["last"]["unseen@all"]["learned"]["num_database"] == 30


# ------------------------------------------------------------------------ mAP@k as the reference computes it
def reference_map(query_codes, db_codes, query_labels, db_labels, topk):
    """aassxun/DSH_Analysis @ 44271bc utils/evaluate.py, transcribed from the benchmark spec (§7.2): per query,
    relevance = label dot product > 0, d = (L - q.b) / 2, order = argsort(d), keep [:topk] (topk = -1 keeps
    all but the last item), AP = mean over the hits of (hit number / position), a query without a hit adds 0
    and stays in the mean. (argsort is the stable one here; the reference's is not, which only matters for
    ties: hashkit orders ties by database index.)"""
    num_query = query_labels.shape[0]
    total = 0.0
    for i in range(num_query):
        retrieval = (query_labels[i, :] @ db_labels.t() > 0).float()
        hamming = 0.5 * (db_codes.shape[1] - query_codes[i, :] @ db_codes.t())
        retrieval = retrieval[torch.argsort(hamming, stable=True)][:topk]
        count = int(retrieval.sum().item())
        if count == 0:
            continue
        score = torch.linspace(1, count, count, dtype=torch.float64)
        index = torch.nonzero(retrieval == 1).squeeze(1).double() + 1.0
        total += float((score / index).mean())
    return total / num_query


def hashkit_parity(q, d, ql, dl, topk):
    """hashkit's options that reproduce it (docs/benchmarks.md): hits_in_topk, dot relevance, and for
    topk = -1 ("mAP@All") the dropped last item."""
    problem = RetrievalProblem(query=q, database=d, query_labels=ql, database_labels=dl)
    if topk == -1:
        return evaluate(problem, drop_last_item=True, relevance_rule="dot")["map"]
    return evaluate(problem, topk=(topk,), map_norm="hits_in_topk", relevance_rule="dot")[f"map@{topk}"]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), bits=st.sampled_from([4, 12, 32]), topk=st.sampled_from([-1, 1, 5, 20, 100]),
       multi=st.booleans())
def test_map_at_k_equals_the_reference_function(seed, bits, topk, multi):
    rng = np.random.default_rng(seed)
    nq, nd, c = 7, 40, 5
    q = torch.tensor(rng.choice([-1.0, 1.0], (nq, bits)))
    d = torch.tensor(rng.choice([-1.0, 1.0], (nd, bits)))
    if multi:
        ql = torch.tensor((rng.random((nq, c)) < 0.3).astype(float))
        dl = torch.tensor((rng.random((nd, c)) < 0.3).astype(float))
    else:
        ql = torch.eye(c, dtype=torch.float64)[rng.integers(0, c, nq)]
        dl = torch.eye(c, dtype=torch.float64)[rng.integers(0, c, nd)]
    assert hashkit_parity(q, d, ql, dl, topk) == pytest.approx(reference_map(q, d, ql, dl, topk), abs=1e-12)


@pytest.mark.parametrize("ranking, k, code, readme, by_m", [
    ("+-++++", 3, 0.8333, 0.5556, 0.3333),
    ("+--+++", 3, 1.0000, 0.3333, 0.2500),
    ("+-++++", -1, 0.8042, 0.8100, 0.8100),
    ("-----+", -1, 0.0000, 0.1667, 0.1667),
    ("----++", -1, 0.2000, 0.2667, 0.2667),
])
def test_worked_examples_of_the_spec(ranking, k, code, readme, by_m):
    """The spec's five 6-item rankings under the reference code, its README formula (min(m_q, k)) and m_q."""
    n = len(ranking)
    d = torch.ones(n, n)
    for j in range(n):
        d[j, :j] = -1.0  # item j at Hamming distance j: distinct distances, ranking = database order
    q = torch.ones(1, n)
    dl = torch.tensor([[1.0] if ch == "+" else [0.0] for ch in ranking])
    ql = torch.ones(1, 1)
    assert reference_map(q, d, ql, dl, k) == pytest.approx(code, abs=5e-5)
    assert hashkit_parity(q, d, ql, dl, k) == pytest.approx(code, abs=5e-5)
    problem = RetrievalProblem(query=q, database=d, query_labels=ql, database_labels=dl)
    if k > 0:
        for norm, value in (("min_k_R", readme), ("R", by_m)):
            assert evaluate(problem, topk=(k,), map_norm=norm)[f"map@{k}"] == pytest.approx(value, abs=5e-5)
    else:  # k = all: the README formula and normalising by m_q are plain AP over the whole ranking
        assert evaluate(problem)["map"] == pytest.approx(readme, abs=5e-5) and readme == by_m


def test_reference_selection_is_best_seen_at_seen_on_queries(tmp_path):
    """train.selection = best_query on a seen/unseen split selects on seen@seen of the seen test queries and
    reports the other protocols of that model; eval_rounds restricts when it evaluates."""
    from hashkit.training import train

    recipe = th.tiny_recipe(protocol={"name": "pointwise", "epochs": 3},
                            data={"dataset": {"name": "demo", "train_per_class": 3, "query_per_class": 2,
                                              "seen_fraction": 0.8}, "batch_size": 8},
                            train={"progress": False, "selection": "best_query", "eval_rounds": [1, 3]})
    report = train(recipe, tmp_path / "run")
    import json

    evals = [json.loads(line) for line in (tmp_path / "run" / "L8" / "metrics.jsonl").read_text().splitlines()
             if '"eval"' in line]
    assert [e["round"] for e in evals] == [0, 2]
    scores = [e["score"] for e in evals]
    res = report["results"]["8"]
    # logged rounds are 0-based, selected_round 1-based; argmax = the earliest of equal scores (strict improvement)
    assert res["selected_round"] == evals[int(np.argmax(scores))]["round"] + 1
    assert res["selected"]["encoded"]["map"] == pytest.approx(max(scores), abs=1e-12)
    assert res["protocols"]["selected"]["seen@seen"]["encoded"]["map"] == pytest.approx(max(scores), abs=1e-12)
    assert res["selected"]["encoded"]["num_queries"] == 16  # the 8 seen classes' queries only
