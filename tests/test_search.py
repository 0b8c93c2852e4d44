"""Search backends: exact popcount search vs a literal reference; faiss backends vs the exact backend; CLI."""

import json
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashkit.codes.code_file import save_code_file
from hashkit.codes.packing import pack_codes
from hashkit.errors import ContractError, HashkitError
from hashkit.search import make_backend


def codes(rng, n, bits, values=None):
    """Random ±1 codes; ``values`` limits them to a few distinct codes (many exact ties)."""
    if values:
        pool = rng.choice([-1.0, 1.0], (values, bits))
        return pack_codes(pool[rng.integers(0, values, n)]).numpy()
    return pack_codes(rng.choice([-1.0, 1.0], (n, bits))).numpy()


def naive(db, q, bits):
    """Literal distances from the unpacked bits (independent of the popcount path)."""
    ub = np.unpackbits(db, axis=1, count=bits)
    uq = np.unpackbits(q, axis=1, count=bits)
    return [[int((uq[i] != ub[j]).sum()) for j in range(len(db))] for i in range(len(q))]


@settings(max_examples=25, deadline=None)
@given(bits=st.integers(1, 130), n=st.integers(1, 60), k=st.integers(1, 70), seed=st.integers(0, 2**31),
       few=st.booleans())
def test_exact_knn_and_radius_equal_literal_reference(bits, n, k, seed, few):
    rng = np.random.default_rng(seed)
    db, q = codes(rng, n, bits, 4 if few else None), codes(rng, 5, bits)
    ids = rng.permutation(1000)[:n]
    backend = make_backend("exact", bits)
    backend.add(db, ids)
    res = backend.knn(q, k)
    dist = naive(db, q, bits)
    for i in range(len(q)):
        order = sorted(range(n), key=lambda j: (dist[i][j], j))[: min(k, n)]
        assert res.ids[i].tolist() == [int(ids[j]) for j in order]
        assert res.distances[i].tolist() == [dist[i][j] for j in order]
    radius = bits // 3
    rr = backend.radius(q, radius)
    for i in range(len(q)):
        order = sorted((j for j in range(n) if dist[i][j] <= radius), key=lambda j: (dist[i][j], j))
        got_ids, got_d = rr.query(i)
        assert got_ids.tolist() == [int(ids[j]) for j in order]
        assert got_d.tolist() == [dist[i][j] for j in order]


def test_exact_knn_threshold_fallback_on_large_database():
    """A large database where the sampled threshold can under-shoot still gives the exact top k."""
    rng = np.random.default_rng(1)
    db = codes(rng, 40_000, 64)
    db[123] = 0  # one code near the all-zero query, the rest random
    q = np.zeros((2, 8), np.uint8)
    backend = make_backend("exact", 64)
    backend.add(db)
    res = backend.knn(q, 50)
    full = np.unpackbits(db, axis=1).sum(axis=1)
    order = np.lexsort((np.arange(len(db)), full))[:50]
    assert res.ids[0].tolist() == order.tolist() and res.ids[0, 0] == 123
    assert res.distances[0].tolist() == full[order].tolist()


@pytest.mark.parametrize("bits", [12, 64, 100])
def test_faiss_flat_equals_exact(bits):
    pytest.importorskip("faiss")
    rng = np.random.default_rng(bits)
    db, q = codes(rng, 3000, bits, values=200), codes(rng, 40, bits)
    exact, flat = make_backend("exact", bits), make_backend("faiss-flat", bits)
    for b in (exact, flat):
        b.add(db)
    a, f = exact.knn(q, 25), flat.knn(q, 25)
    assert np.array_equal(a.distances, f.distances)
    dist = np.array(naive(db, q, bits))
    for i in range(len(q)):
        kth = a.distances[i, -1]
        inner = a.distances[i] < kth  # below the last distance the neighbour sets are unique
        assert set(a.ids[i][inner]) == set(f.ids[i][inner])
        assert dist[i, f.ids[i]].tolist() == f.distances[i].tolist()
    for radius in (0, bits // 4):
        ra, rf = exact.radius(q, radius), flat.radius(q, radius)
        assert np.array_equal(ra.lims, rf.lims) and np.array_equal(ra.ids, rf.ids)
        assert np.array_equal(ra.distances, rf.distances)


@pytest.mark.parametrize("name, options", [("faiss-ivf", {"nlist": 8, "nprobe": 8}), ("faiss-hnsw", {}),
                                           ("faiss-multihash", {"nhash": 2, "nflip": 3})])
def test_faiss_approximate_backends(name, options):
    pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    db, q = codes(rng, 2000, 32), codes(rng, 20, 32)
    exact, approx = make_backend("exact", 32), make_backend(name, 32, **options)
    for b in (exact, approx):
        b.add(db, np.arange(2000) + 10)
    a, x = exact.knn(q, 10), approx.knn(q, 10)
    dist = np.array(naive(db, q, 32))
    valid = x.ids >= 0
    assert np.all(dist[np.nonzero(valid)[0], x.ids[valid] - 10] == x.distances[valid])  # true distances
    assert np.all(np.diff(np.where(valid, x.distances, 10**6), axis=1) >= 0)  # sorted
    if name == "faiss-ivf":  # probing every list is exhaustive
        assert np.array_equal(a.distances, x.distances)
        ra, rx = exact.radius(q, 10), approx.radius(q, 10)
        assert np.array_equal(ra.ids, rx.ids) and np.array_equal(ra.lims, rx.lims)


def test_missing_faiss_gives_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(HashkitError, match=r"hashkit\[faiss\]"):
        make_backend("faiss-flat", 16)


def test_backend_input_errors():
    b = make_backend("exact", 12)
    with pytest.raises(ContractError, match="uint8"):
        b.add(np.zeros((3, 3), np.uint8))
    with pytest.raises(ContractError, match="unknown search backend"):
        make_backend("annoy", 12)
    b.add(np.zeros((3, 2), np.uint8))
    assert b.knn(np.zeros((1, 2), np.uint8), 10).ids.shape == (1, 3)


def test_cli_search_codes_json_and_text(tmp_path, capsys):
    from hashkit.cli.main import main

    rng = np.random.default_rng(0)
    db = codes(rng, 30, 24)
    save_code_file(tmp_path / "db.safetensors", db, 24, paths=[f"img/{i}.jpg" for i in range(30)])
    save_code_file(tmp_path / "q.safetensors", db[[4, 7]], 24, paths=["a.jpg", "b.jpg"])
    assert main(["search", str(tmp_path / "db.safetensors"), "--query", str(tmp_path / "q.safetensors"),
                 "-k", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [e["query"] for e in out] == ["a.jpg", "b.jpg"]
    assert out[0]["results"][0] == {"id": 4, "path": "img/4.jpg", "distance": 0} and len(out[0]["results"]) == 3
    assert main(["search", str(tmp_path / "db.safetensors"), "--query", str(tmp_path / "q.safetensors"),
                 "--radius", "0"]) == 0
    assert "img/7.jpg" in capsys.readouterr().out
    save_code_file(tmp_path / "q16.safetensors", db[:2, :2], 16)
    assert main(["search", str(tmp_path / "db.safetensors"), "--query", str(tmp_path / "q16.safetensors")]) == 2
