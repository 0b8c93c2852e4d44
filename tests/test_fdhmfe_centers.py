"""Hash centres (CSQ / OrthoHash codebooks): Hadamard rows, balance, and the minimum pairwise distance."""

from __future__ import annotations

import itertools

import pytest
import torch

from hashkit.assemble import make_component
from hashkit.interfaces import BuildContext
from hashkit_plugins.losses.hash_centers import build_centers, hadamard_matrix, min_pairwise_distance

LENGTHS = (12, 16, 24, 32, 48, 64)
CLASSES = (10, 100, 120, 200, 555)

# Minimum pairwise Hamming distance of build_centers(C, L) (seed 0), reported here and in docs/methods/fdhmfe.md.
# Hadamard / Paley rows give L/2 as long as C <= 2L - 2; the greedy balanced fill gives less.
EXPECTED_MIN_DISTANCE = {
    10: {12: 6, 16: 8, 24: 12, 32: 16, 48: 24, 64: 32},
    100: {12: 4, 16: 4, 24: 8, 32: 10, 48: 18, 64: 32},
    120: {12: 4, 16: 4, 24: 8, 32: 10, 48: 18, 64: 32},
    200: {12: 2, 16: 4, 24: 6, 32: 10, 48: 16, 64: 24},
    555: {12: 2, 16: 2, 24: 6, 32: 8, 48: 16, 64: 22},
}


def _literal_min_distance(codes):
    best = codes.shape[1]
    for i, j in itertools.combinations(range(codes.shape[0]), 2):
        best = min(best, int((codes[i] != codes[j]).sum()))
    return best


@pytest.mark.parametrize("L", (12, 16, 20, 24, 32, 44, 48, 64))
def test_hadamard_matrices(L):
    h = hadamard_matrix(L)
    assert h is not None
    torch.testing.assert_close(h @ h.T, L * torch.eye(L))
    assert (h[0] == 1).all() and set(h.unique().tolist()) == {-1.0, 1.0}
    assert hadamard_matrix(36) is None  # 35 is not prime, 36 not a power of two: greedy codes only


@pytest.mark.parametrize("L", LENGTHS)
def test_centres_are_balanced_and_distance_is_reported(L):
    report = []
    for C in CLASSES:
        c = build_centers(C, L)
        assert c.shape == (C, L)
        assert (c.sum(dim=1) == 0).all(), "every centre has exactly L/2 bits at -1"
        assert len({tuple(r.tolist()) for r in c}) == C, "centres are distinct"
        d = min_pairwise_distance(c)
        if C <= 120:
            assert d == _literal_min_distance(c)
        assert d == EXPECTED_MIN_DISTANCE[C][L]
        if C <= 2 * L - 2 and hadamard_matrix(L) is not None:
            assert d == L // 2
        report.append(f"C={C}: d_min={d}")
    print(f"L={L}: " + ", ".join(report))


def test_centres_are_deterministic_and_stored_with_the_loss():
    assert torch.equal(build_centers(200, 24, seed=3), build_centers(200, 24, seed=3))
    loss = make_component("loss", "csq", {"seed": 3}, BuildContext(code_length=24, num_classes=200))
    assert torch.equal(loss.centers, build_centers(200, 24, seed=3))
    state = loss.state_dict()
    assert "centers" in state and int(state["min_distance"]) == min_pairwise_distance(loss.centers)


def test_odd_length_is_a_contract_error():
    from hashkit.errors import ContractError

    with pytest.raises(ContractError, match="even code length"):
        build_centers(10, 13)
