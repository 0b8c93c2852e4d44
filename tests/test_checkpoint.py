"""Checkpoints: exact round trip (model, optimiser state, RNG states, protocol state) and clear errors on damage."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest
import torch
from torch import nn

from file_faults import rewrite_header
from hashkit.errors import CheckpointError
from hashkit.training.checkpoint import (
    capture_rng,
    flatten_optimizer_state,
    load_checkpoint,
    load_module_state,
    restore_rng,
    save_checkpoint,
    split_prefix,
    unflatten_optimizer_state,
    with_prefix,
)


def _model_and_optimizer(kind: str):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    if kind == "sgd":
        opt = torch.optim.SGD([{"params": model[0].parameters(), "base_lr": 0.1},
                               {"params": list(model[1].parameters()) + list(model[2].parameters()), "base_lr": 0.01}],
                              lr=0.1, momentum=0.9, nesterov=True)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.8, 0.99))
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 4)).pow(2).mean().backward()
        opt.step()
    return model, opt


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_round_trip_is_exact(tmp_path, kind):
    model, opt = _model_and_optimizer(kind)
    optim_tensors, optim_meta = flatten_optimizer_state(opt.state_dict())
    protocol = {"B": torch.randn(7, 8).sign(), "round": torch.tensor(2)}
    rng_tensors, rng_meta = capture_rng()
    tensors = {**with_prefix(model.state_dict(), "model."), **optim_tensors, **rng_tensors,
               **with_prefix(protocol, "protocol.")}
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, tensors, {"optimizer": optim_meta, "rng": rng_meta, "position": {"step": 3}},
                    sidecar={"position": {"step": 3}})
    expected_next = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])

    torch.manual_seed(123), np.random.seed(4), random.seed(5)  # disturb every generator
    fresh, fresh_opt = _model_and_optimizer(kind)
    for p in fresh.parameters():
        nn.init.zeros_(p)
    loaded, meta = load_checkpoint(path)
    load_module_state(fresh, split_prefix(loaded, "model."), what="model", path=path)
    fresh_opt.load_state_dict(unflatten_optimizer_state(loaded, meta["optimizer"]))
    restore_rng(loaded, meta["rng"])

    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k
    ref_state, got_state = opt.state_dict(), fresh_opt.state_dict()
    assert ref_state["param_groups"] == got_state["param_groups"]
    for idx, values in ref_state["state"].items():
        for name, value in values.items():
            other = got_state["state"][idx][name]
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(other)), (idx, name)
    got_next = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    assert torch.equal(expected_next[0], got_next[0])
    assert np.array_equal(expected_next[1], got_next[1])
    assert expected_next[2] == got_next[2]
    assert torch.equal(split_prefix(loaded, "protocol.")["B"], protocol["B"])
    assert meta["position"] == {"step": 3}
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["position"] == {"step": 3} and len(sidecar["sha256"]) == 64


def _saved(tmp_path):
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, {"model.w": torch.arange(64, dtype=torch.float32)}, {"position": {"step": 1}})
    return path


def test_flipped_byte_is_a_checksum_error(tmp_path):
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # inside the tensor bytes (the header is at the start)
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(path)


@pytest.mark.parametrize("field, value", [
    ("log_lines", 10),            # the reported attack: resume would cut metrics.jsonl to 10 lines
    ("position", {"step": 0}),
    ("optimizer", {"param_groups": []}),
    ("rng", {"python_state": [3, 2, 1]}),
])
def test_edited_metadata_is_a_checksum_error(tmp_path, field, value):
    path = tmp_path / "ck.safetensors"
    meta = {"position": {"step": 7}, "log_lines": 30, "optimizer": {"param_groups": [{"lr": 0.1}]},
            "rng": {"python_state": [1, 2, 3]}}
    save_checkpoint(path, {"model.w": torch.arange(8, dtype=torch.float32)}, meta)
    assert load_checkpoint(path)[1] == meta

    def edit(header):
        stored = json.loads(header["__metadata__"]["meta"])
        stored[field] = value
        header["__metadata__"]["meta"] = json.dumps(stored, sort_keys=True)

    rewrite_header(path, edit)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(path)


def test_added_header_field_and_old_format_are_refused(tmp_path):
    path = _saved(tmp_path)
    rewrite_header(path, lambda h: h["__metadata__"].update(note="x"))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(path)
    path = _saved(tmp_path)
    rewrite_header(path, lambda h: h["__metadata__"].update(format_version="1"))
    with pytest.raises(CheckpointError, match="format '1' is older"):
        load_checkpoint(path)


def test_truncated_file_is_an_error(tmp_path):
    path = _saved(tmp_path)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        load_checkpoint(path)


def test_garbage_and_foreign_files_are_errors(tmp_path):
    from safetensors.torch import save_file

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01not a checkpoint")
    with pytest.raises(CheckpointError, match=str(garbage)):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a hashkit checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_shape_mismatch_names_the_entry(tmp_path):
    path = _saved(tmp_path)
    tensors, _ = load_checkpoint(path)
    module = nn.Module()
    module.w = nn.Parameter(torch.zeros(3))
    with pytest.raises(CheckpointError, match=r"entry 'w' has shape \(64,\)"):
        load_module_state(module, split_prefix(tensors, "model."), what="model state", path=path)


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = _saved(tmp_path)
    before = path.read_bytes()

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"model.w": torch.zeros(64)}, {"position": {"step": 2}})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.safetensors"]  # no temp file left behind


def test_training_checkpoint_resumes_optimizer_and_protocol(tmp_path):
    """A real training checkpoint holds every group of tensors the trainer needs."""
    import training_helpers as th
    from hashkit.training import train

    train(th.adsh_recipe(protocol={"name": "adsh", "rounds": 1, "epochs": 1, "num_samples": 16}), tmp_path / "run")
    tensors, meta = load_checkpoint(tmp_path / "run" / "L8" / "checkpoint.safetensors")
    prefixes = {k.split(".", 1)[0] for k in tensors}
    assert {"model", "optim", "protocol", "rng"} <= prefixes
    assert {"B", "U", "S", "sample_index", "round"} <= set(split_prefix(tensors, "protocol."))
    assert meta["position"] == {"round": 1, "epoch": 0, "batch": 0, "step": 2, "finished": True}
