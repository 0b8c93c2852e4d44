"""The label-derived target codes of FISH and CHN (the algorithm, its RNG parity, the official torch variant),
the ``proxy_codes`` and ``sampled_rounds`` protocols, and the ``proxy_code_mse`` loss."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from hashkit.assemble import make_component
from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, LossInputs
from hashkit_plugins.protocols.proxy_codes import (
    _rotation_torch,
    parity_random_state,
    proxy_codes_numpy,
    proxy_codes_torch,
)


def labels_for(classes: int, per_class: int) -> np.ndarray:
    return np.repeat(np.eye(classes), per_class, axis=0)


def literal_proxy_codes(labels: np.ndarray, bits: int, rng: np.random.RandomState) -> np.ndarray:
    """The steps as the spec writes them (sigma 1, delta 1e-4, 15 iterations), with scipy's Procrustes solver."""
    n = labels.shape[0]
    V = rng.randn(bits, n)
    B = np.sign(rng.randn(bits, n))
    R = scipy.linalg.orthogonal_procrustes(np.eye(bits), B @ V.T)[0]  # the orthogonal R maximising tr(R^T B V^T)
    Y = labels.T
    for _ in range(15):
        B = np.where(R @ V >= 0, 1.0, -1.0)
        Ul = (Y @ V.T) @ np.linalg.pinv(V @ V.T)
        V = np.linalg.pinv(Ul.T @ Ul + 1e-4 * (R.T @ R)) @ (Ul.T @ Y + 1e-4 * (R.T @ B))
        R = scipy.linalg.orthogonal_procrustes(np.eye(bits), B @ V.T)[0]
    return B.T


@pytest.mark.parametrize("bits", [12, 24])
def test_numpy_codes_equal_the_literal_steps(bits):
    labels = labels_for(7, 9)
    ours = proxy_codes_numpy(labels, bits, np.random.RandomState(5))
    ref = literal_proxy_codes(labels, bits, np.random.RandomState(5))
    assert ours.shape == (63, bits) and set(np.unique(ours)) <= {-1.0, 1.0}
    assert np.array_equal(ours, ref)


def test_codes_are_class_codes_when_classes_outnumber_bits():
    """With C > L (every fine-grained setting) the items of a class share one code and the class codes spread
    (mean distance ≈ L/2). With C < L the directions the labels do not span keep each item's own random code."""
    labels = labels_for(40, 10)
    codes = proxy_codes_numpy(labels, 24, np.random.RandomState(68))
    per_class = [np.unique(codes[c * 10:(c + 1) * 10], axis=0).shape[0] for c in range(40)]
    assert sum(k == 1 for k in per_class) >= 36, per_class
    class_codes = np.stack([codes[c * 10] for c in range(40)])
    distances = (24 - class_codes @ class_codes.T) / 2
    assert 9 < distances[~np.eye(40, dtype=bool)].mean() < 15
    few = proxy_codes_numpy(labels_for(4, 10), 24, np.random.RandomState(68))
    assert np.unique(few[:10], axis=0).shape[0] > 1


def test_parity_rng_replays_the_reference_process():
    """run.py seeds numpy's global generator once (68) and trains 12, 24, 32, 48 bits in order: the V and B0
    draws of 24 bits come after two (12, n) draws."""
    n = 40
    state = np.random.get_state()
    try:
        np.random.seed(68)
        np.random.randn(12, n)
        np.random.randn(12, n)
        expected_v = np.random.randn(24, n)
    finally:
        np.random.set_state(state)
    assert np.array_equal(parity_random_state(24, 68, (12, 24, 32, 48), n).randn(24, n), expected_v)
    assert np.array_equal(parity_random_state(12, 68, (12, 24), n).randn(12, n), np.random.RandomState(68).randn(12, n))
    with pytest.raises(ContractError, match="parity_lengths"):
        parity_random_state(16, 68, (12, 24), n)


def test_torch_solver_uses_the_official_rotation_and_gives_class_codes():
    x = torch.randn(6, 6, generator=torch.Generator().manual_seed(0))
    u, _, v = torch.svd(x)  # the official code's call: R = U V (V as torch.svd returns it)
    assert torch.allclose(_rotation_torch(x), u @ v, atol=1e-5)
    labels = torch.from_numpy(labels_for(30, 8)).float()
    codes = proxy_codes_torch(labels, 12, torch.Generator().manual_seed(3))
    again = proxy_codes_torch(labels, 12, torch.Generator().manual_seed(3))
    assert torch.equal(codes, again) and codes.shape == (240, 12) and set(codes.unique().tolist()) <= {-1.0, 1.0}
    per_class = [torch.unique(codes[c * 8:(c + 1) * 8], dim=0).shape[0] for c in range(30)]
    assert sum(k == 1 for k in per_class) >= 25, per_class


# ------------------------------------------------------------------------------------------------- protocols
def _protocol(name="proxy_codes", **cfg):
    return make_component("training_protocol", name, cfg, BuildContext(code_length=12, num_classes=5, num_train=50))


def test_proxy_protocol_targets_database_and_state():
    labels = torch.from_numpy(labels_for(5, 10)).float()
    proto = _protocol(num_samples=16)
    proto.setup(labels, torch.Generator().manual_seed(1))
    T = proto.database_codes()
    assert T.shape == (50, 12) and proto.provides == ("targets",) and proto.seed is not None
    assert np.array_equal(T.double().numpy(), proxy_codes_numpy(labels.double().numpy(), 12,
                                                                np.random.RandomState(proto.seed)))
    order = proto.begin_round(0, torch.Generator().manual_seed(2))
    assert torch.equal(order, torch.randperm(50, generator=torch.Generator().manual_seed(2))[:16])
    assert torch.equal(proto.batch_state(order[:4])["targets"], T[order[:4]])
    fresh = _protocol(num_samples=16)
    fresh.load_state_dict(proto.state_dict())
    assert torch.equal(fresh.database_codes(), T) and fresh.seed == proto.seed and fresh.num_train == 50
    other = _protocol(num_samples=16)
    other.setup(labels, torch.Generator().manual_seed(1))
    assert torch.equal(other.database_codes(), T)  # a pure function of the labels and the generator
    with pytest.raises(ContractError, match="12-bit"):
        make_component("training_protocol", "proxy_codes", {}, BuildContext(code_length=24)).load_state_dict(
            proto.state_dict())


def test_proxy_protocol_parity_rng_and_torch_solver():
    labels = torch.from_numpy(labels_for(4, 6)).float()
    proto = _protocol(parity_rng=True)
    proto.setup(labels, torch.Generator().manual_seed(9))
    expected = proxy_codes_numpy(labels.double().numpy(), 12, np.random.RandomState(68))
    assert np.array_equal(proto.database_codes().double().numpy(), expected)
    with pytest.raises(ContractError, match="numpy"):
        _protocol(parity_rng=True, solver="torch").setup(labels, torch.Generator())
    torch_proto = _protocol(solver="torch")
    torch_proto.setup(labels, torch.Generator().manual_seed(9))
    assert torch.equal(torch_proto.database_codes(),
                       proxy_codes_torch(labels, 12, torch.Generator().manual_seed(torch_proto.seed)))


def test_sampled_rounds_draws_a_fresh_sample_per_round():
    proto = _protocol("sampled_rounds", rounds=3, epochs=2, num_samples=20)
    assert (proto.num_rounds, proto.epochs_per_round, proto.database_codes()) == (3, 2, None)
    proto.setup(torch.zeros(50, 5), torch.Generator())
    a = proto.begin_round(0, torch.Generator().manual_seed(0))
    b = proto.begin_round(1, torch.Generator().manual_seed(1))
    assert len(a) == 20 == len(set(a.tolist())) and not torch.equal(a, b)
    big = _protocol("sampled_rounds", num_samples=500)
    big.setup(torch.zeros(50, 5), torch.Generator())
    assert sorted(big.begin_round(0, torch.Generator().manual_seed(0)).tolist()) == list(range(50))


def test_sampled_rounds_positions_follow_the_sample_and_its_state():
    """The per-round sample is a pure function of the round's generator; each batch item's position is its place
    in that sample (what DSH_Analysis's position-keyed banks read), and a protocol restored from the state dict
    (a run resumed inside the round) hands out the same positions."""
    proto = _protocol("sampled_rounds", rounds=2, epochs=1, num_samples=20)
    proto.setup(torch.zeros(50, 5), torch.Generator())
    assert proto.provides == ("position",) and proto.state_dict() == {}
    with pytest.raises(ContractError, match="begin_round"):
        proto.batch_state(torch.tensor([0]))
    proto.begin_round(0, torch.Generator().manual_seed(5))
    sample = proto.begin_round(0, torch.Generator().manual_seed(3))  # redrawn, not cached
    assert torch.equal(sample, torch.randperm(50, generator=torch.Generator().manual_seed(3))[:20])
    batch = sample[[7, 0, 19, 3]]
    assert proto.batch_state(batch)["position"].tolist() == [7, 0, 19, 3]
    outside = next(i for i in range(50) if i not in sample.tolist())
    with pytest.raises(ContractError, match="outside"):
        proto.batch_state(torch.tensor([outside]))
    resumed = _protocol("sampled_rounds", rounds=2, epochs=1, num_samples=20)
    resumed.setup(torch.zeros(50, 5), torch.Generator())
    resumed.load_state_dict(proto.state_dict())
    assert torch.equal(resumed.batch_state(batch)["position"], proto.batch_state(batch)["position"])


# ----------------------------------------------------------------------------------------------------- loss
def test_proxy_code_mse_equals_literal_value_and_gradient():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(5, 12, dtype=torch.float64, generator=g).requires_grad_()
    t = torch.randint(0, 2, (5, 12), generator=g).double() * 2 - 1
    loss = make_component("loss", "proxy_code_mse", {}, BuildContext())
    assert loss.requires == ("logits", "protocol.targets")
    value = loss(LossInputs(logits=h, protocol={"targets": t})).value
    literal = sum(float(h[i, k].detach() - t[i, k]) ** 2 for i in range(5) for k in range(12)) / 60
    assert value.item() == pytest.approx(literal, rel=1e-6)
    value.backward()
    assert torch.allclose(h.grad, 2 * (h.detach() - t) / 60, atol=1e-7)
    assert torch.allclose(value.double(), F.mse_loss(h, t), atol=1e-7)


def test_targets_travel_with_the_run(tmp_path):
    """A tiny fish-demo run: the checkpoint holds the targets (recomputable from the labels and the recorded
    seed), load_run gives them back as the database codes, and the report scores them beside the encoded DB."""
    from pathlib import Path

    from hashkit.assemble import build_dataset
    from hashkit.runs import load_run
    from hashkit.training import train

    tiny = {"data.dataset.train_per_class": 6, "data.dataset.query_per_class": 2, "protocol.rounds": 1,
            "protocol.epochs": 1, "protocol.num_samples": 30, "train.progress": False}
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "fish-demo.toml"
    report = train(recipe, tmp_path / "run", overrides=tiny)
    assert set(report["results"]["12"]["last"]) == {"label", "encoded"}
    run = load_run(tmp_path / "run", code_length=12)
    labels = build_dataset(run.recipe).split("train").targets.double().numpy()
    seed = int(run.protocol_state["seed"])
    expected = proxy_codes_numpy(labels, 12, np.random.RandomState(seed))
    assert torch.equal(run.database_codes, run.protocol_state["T"])
    assert np.array_equal(run.database_codes.double().numpy(), expected)
