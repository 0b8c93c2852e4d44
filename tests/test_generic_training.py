"""Loss state through the trainer: ``Loss.begin_epoch`` runs once per epoch, memory banks and method state are
checkpointed under ``losses.*``, and a run interrupted mid-epoch and resumed ends exactly like an
uninterrupted one (so the hook is not re-run on resume and the restored state is what the next batch uses)."""

from __future__ import annotations

import math

import pytest
import torch

import training_helpers as th
from hashkit.training import train
from hashkit.training.checkpoint import load_checkpoint
from hashkit.training.trainer import LengthTrainer


def _recipe(**sections):
    parts = dict(
        model={"backbone": {"name": "tiny_cnn", "width": 4}, "aggregation": {"name": "gap"},
               "hash_head": {"name": "linear"}},
        losses=[{"name": "dpsh"}, {"name": "hashnet", "step_continuation": 1},
                {"name": "dsdh", "weight": 0.5, "quantization": 1.0}, {"name": "dpn", "update_targets": True}],
        protocol={"name": "pointwise", "epochs": 3},
        train={"progress": False, "checkpoint_every": 3},
    )
    return th.tiny_recipe(**{**parts, **sections})


class _Stop(Exception):
    pass


def test_banks_and_schedules_resume_mid_epoch_exactly(tmp_path, monkeypatch):
    """DSDH's B (in the gradient through its quantization option) and DPN's targets change at epoch starts:
    re-running the hook on resume, or losing the state, would change the trained weights."""
    full = tmp_path / "full"
    train(_recipe(), full)
    tensors, meta = load_checkpoint(full / "L8" / "checkpoint.safetensors")
    n = 40  # demo data: 10 classes x 4 training items
    assert tensors["losses.losses.0.bank.codes"].shape == (n, 8)
    assert bool(tensors["losses.losses.0.bank.filled"].all())
    assert float(tensors["losses.losses.1.scale"]) == pytest.approx(math.sqrt(3))  # epochs 0, 1, 2 at step 1
    assert (tensors["losses.losses.2.B"] != 0).any() and tensors["losses.losses.2.W"].abs().sum() > 0
    assert set(tensors["losses.losses.3.targets"].unique().tolist()) <= {-1.0, 0.0, 1.0}

    interrupted = tmp_path / "interrupted"
    original = LengthTrainer._step
    calls = {"n": 0}

    def stop_after_eight(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 8:  # 5 steps per epoch, checkpoints every 3: the last one is mid-epoch 2
            raise _Stop
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LengthTrainer, "_step", stop_after_eight)
    with pytest.raises(_Stop):
        train(_recipe(), interrupted)
    _, meta = load_checkpoint(interrupted / "L8" / "checkpoint.safetensors")
    assert meta["position"]["round"] == 1 and meta["position"]["batch"] == 1  # pointwise: a round is an epoch
    monkeypatch.setattr(LengthTrainer, "_step", original)
    train(None, interrupted, resume=True)

    a, b = th.final_state(full, 8), th.final_state(interrupted, 8)
    assert a.keys() == b.keys() and any(k.startswith("losses.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_position_keyed_banks_resume_inside_a_round(tmp_path, monkeypatch):
    """DSH_Analysis's set-up: sampled_rounds hands the losses each item's position in the round's sample;
    HashNet's never-reset bank, MDSH's per-round random bank and DSH's per-round bank are keyed by it. A run
    stopped inside a round resumes (the sample and positions come back from the checkpoint) to the same end."""
    m = 24
    recipe = _recipe(
        losses=[{"name": "hashnet", "pairs": "bank", "key": "position", "rows": m, "step_continuation": 2},
                {"name": "mdsh", "key": "position", "rows": m, "epoch_change": 1},
                {"name": "dsh", "key": "position", "rows": m, "reset": "round", "alpha": 0.01}],
        protocol={"name": "sampled_rounds", "rounds": 2, "epochs": 2, "num_samples": m},
        train={"progress": False, "checkpoint_every": 2},
    )
    full, interrupted = tmp_path / "full", tmp_path / "interrupted"
    train(recipe, full)
    original = LengthTrainer._step
    calls = {"n": 0}

    def stop_after_four(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 4:  # 3 steps per epoch, 2 epochs per round, checkpoints every 2: step 4 is mid-epoch 1
            raise _Stop
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LengthTrainer, "_step", stop_after_four)
    with pytest.raises(_Stop):
        train(recipe, interrupted)
    _, meta = load_checkpoint(interrupted / "L8" / "checkpoint.safetensors")
    assert (meta["position"]["round"], meta["position"]["epoch"], meta["position"]["batch"]) == (0, 1, 1)
    monkeypatch.setattr(LengthTrainer, "_step", original)
    train(None, interrupted, resume=True)
    a, b = th.final_state(full, 8), th.final_state(interrupted, 8)
    assert a.keys() == b.keys() and "losses.losses.1.bank.codes" in a and "protocol.sample_index" in a
    for key in a:
        assert torch.equal(a[key], b[key]), key
