"""The compiled Hamming counting kernel against the pure-numpy path, on the cases where they could differ."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashkit.codes.packing import pack_codes, to_words
from hashkit.errors import ContractError
from hashkit.evaluation import hamming_ranks
from hashkit.evaluation.average_precision import hamming_kernel, packed_hamming_block_stats

needs_numba = pytest.mark.skipif(not hamming_ranks.AVAILABLE, reason="numba (the fast extra) is not installed")


def _pairs(rel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.nonzero(rel)  # row-major: sorted by row, then database index


def _both(q, d, rel, bits, ks, drop):
    qw, dw = to_words(pack_codes(q)), to_words(pack_codes(d))
    return [packed_hamming_block_stats(qw, dw, bits, _pairs(rel), ks, drop, backend=b) for b in ("numpy", "numba")]


def _assert_same(a, b):
    # the index-tie sums are accumulated in the same order: equal bit for bit
    for field in ("num_relevant", "ap_sum", "hist", "hist_rel"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    for field in ("hits", "ap_sum_k"):
        assert getattr(a, field).keys() == getattr(b, field).keys()
        for k in getattr(a, field):
            assert np.array_equal(getattr(a, field)[k], getattr(b, field)[k]), (field, k)
    # the tie-aware sums are summed group by group in a different order: equal to rounding
    np.testing.assert_allclose(b.ap_tie_sum, a.ap_tie_sum, rtol=1e-12, atol=1e-13)
    for field in ("hits_tie", "ap_tie_sum_k"):
        for k in getattr(a, field):
            np.testing.assert_allclose(getattr(b, field)[k], getattr(a, field)[k], rtol=1e-12, atol=1e-13)


@needs_numba
@settings(max_examples=60, deadline=None)
@given(nq=st.integers(1, 6), nd=st.integers(1, 23), bits=st.sampled_from([1, 3, 12, 64, 65, 130]),
       density=st.sampled_from([0.0, 0.2, 0.6, 1.0]), drop=st.booleans(), seed=st.integers(0, 10_000))
def test_compiled_kernel_equals_numpy_path(nq, nd, bits, density, drop, seed):
    """Any sizes (N not a multiple of the 4 lanes, one or several 64-bit words), no / some / all items relevant."""
    rng = np.random.default_rng(seed)
    levels = rng.integers(1, 4)  # few distinct codes: many ties
    protos = rng.choice([-1.0, 1.0], (levels, bits))
    q = protos[rng.integers(0, levels, nq)] * np.where(rng.random((nq, bits)) < 0.1, -1.0, 1.0)
    d = protos[rng.integers(0, levels, nd)]
    rel = rng.random((nq, nd)) < density
    _assert_same(*_both(q, d, rel, bits, (1, 4, 7, 100), drop))


@needs_numba
def test_compiled_kernel_drops_the_last_ranked_item_when_a_later_index_is_relevant():
    # distances [3, 3, 1, 0] to database items 0..3; the last-ranked item is index 1 (largest distance, then
    # largest index), relevant; item 3 is relevant with a larger index but ranks first
    bits = 4
    q = np.ones((1, bits))
    d = np.ones((4, bits))
    for j, dist in enumerate([3, 3, 1, 0]):
        d[j, :dist] = -1
    rel = np.array([[False, True, False, True]])
    numpy_stats, numba_stats = _both(q, d, rel, bits, (2,), True)
    _assert_same(numpy_stats, numba_stats)
    # kept ranking: 3 (rel), 2, 0; AP sum = 1/1; hist without the dropped item
    assert numba_stats.num_relevant.tolist() == [1.0] and numba_stats.ap_sum.tolist() == [1.0]
    assert numba_stats.hist.tolist() == [[1, 1, 0, 1, 0]]


def test_kernel_choice(monkeypatch):
    monkeypatch.delenv("HASHKIT_HAMMING_KERNEL", raising=False)
    assert hamming_kernel() == ("numba" if hamming_ranks.AVAILABLE else "numpy")
    assert hamming_kernel("numpy") == "numpy"
    monkeypatch.setenv("HASHKIT_HAMMING_KERNEL", "numpy")
    assert hamming_kernel() == "numpy"
    monkeypatch.setenv("HASHKIT_HAMMING_KERNEL", "fast")
    with pytest.raises(ContractError, match="HASHKIT_HAMMING_KERNEL"):
        hamming_kernel()
    # without numba: auto falls back to numpy, an explicit request is a clear error
    monkeypatch.setattr(hamming_ranks, "AVAILABLE", False)
    monkeypatch.delenv("HASHKIT_HAMMING_KERNEL")
    assert hamming_kernel() == "numpy"
    with pytest.raises(ContractError, match="numba is not installed"):
        hamming_kernel("numba")
