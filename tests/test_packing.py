"""Bit packing and popcount distances against literal references."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hashkit.codes.packing import hamming_distances, num_bytes, pack_codes, to_words, unpack_codes


def random_codes(rng, n, bits):
    return rng.choice([-1.0, 1.0], size=(n, bits)).astype(np.float32)


@pytest.mark.parametrize("bits", range(1, 129))
def test_round_trip_and_layout_every_bit_length(bits):
    rng = np.random.default_rng(bits)
    codes = random_codes(rng, 5, bits)
    packed = pack_codes(torch.from_numpy(codes))
    assert packed.dtype == torch.uint8 and packed.shape == (5, num_bytes(bits))
    assert torch.equal(unpack_codes(packed, bits), torch.from_numpy(codes))
    raw = packed.numpy()
    for r in range(5):  # literal layout: code bit i -> byte i // 8, bit 7 - i % 8; +1 -> 1; zero padding
        for i in range(8 * num_bytes(bits)):
            bit = (int(raw[r, i // 8]) >> (7 - i % 8)) & 1
            assert bit == (int(codes[r, i] > 0) if i < bits else 0)


@settings(max_examples=60, deadline=None)
@given(bits=st.integers(1, 128), n=st.integers(1, 9), seed=st.integers(0, 2**31))
def test_round_trip_property(bits, n, seed):
    codes = random_codes(np.random.default_rng(seed), n, bits)
    assert np.array_equal(unpack_codes(pack_codes(codes), bits).numpy(), codes)


@settings(max_examples=60, deadline=None)
@given(bits=st.integers(1, 300), nq=st.integers(1, 6), nd=st.integers(1, 12), seed=st.integers(0, 2**31))
def test_popcount_distance_equals_naive_count(bits, nq, nd, seed):
    rng = np.random.default_rng(seed)
    q, d = random_codes(rng, nq, bits), random_codes(rng, nd, bits)
    dist = hamming_distances(to_words(pack_codes(q)), to_words(pack_codes(d)))
    for a in range(nq):
        for b in range(nd):
            assert int(dist[a, b]) == sum(1 for i in range(bits) if q[a, i] != d[b, i])


def test_large_database_tiles_match_inner_product():
    rng = np.random.default_rng(0)
    q, d = random_codes(rng, 3, 48), random_codes(rng, 70_000, 48)  # more than one 2^16 column tile
    dist = hamming_distances(to_words(pack_codes(q)), to_words(pack_codes(d)))
    assert np.array_equal(dist, (48 - q @ d.T) / 2)


def test_ternary_codes_are_rejected():
    with pytest.raises(ValueError, match="binarize"):
        pack_codes(torch.tensor([[1.0, 0.0, -1.0]]))
