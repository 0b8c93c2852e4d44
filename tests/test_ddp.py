"""DDP on CPU (gloo, two processes) equals the single-process run with the same global batch.

The model is a BatchNorm-free test backbone (``plain_cnn_test`` in training_helpers): with BatchNorm each
rank would normalise with its own half-batch statistics, which no single-process run reproduces (on CUDA
the trainer converts BatchNorm to SyncBatchNorm, which gloo on CPU does not support). The protocol is ADSH,
so the all-gather of codes for ``observe`` and the broadcast after the DCC update are exercised; the sample
size 29 with batch 8 gives a last batch of 5 split 3 + 2, exercising the uneven-chunk loss weighting.
Equality is up to float summation order (gradients are summed across ranks in a different order than
within one batch), so weights are compared with a 1e-5 tolerance and binary codes exactly.
"""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

import training_helpers as th


def _recipe():
    return th.adsh_recipe(
        model={"backbone": {"name": "plain_cnn_test", "width": 4}, "aggregation": {"name": "gap"},
               "hash_head": {"name": "linear"}},
        protocol={"name": "adsh", "rounds": 2, "epochs": 2, "num_samples": 29, "gamma": 200.0},
        optimizer={"name": "sgd", "lr": 0.01, "momentum": 0.9},
        train={"progress": False, "checkpoint_every": 0},
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, recipe: dict, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    th.register_test_plugin()
    from hashkit.training import train

    train(recipe, out_dir)


@pytest.mark.slow
def test_two_gloo_processes_equal_one_process(tmp_path):
    th.register_test_plugin()
    from hashkit.training import train

    recipe = _recipe()
    single = tmp_path / "single"
    train(recipe, single)
    ddp_dir = tmp_path / "ddp"
    mp.spawn(_worker, args=(2, _free_port(), recipe, str(ddp_dir)), nprocs=2, join=True)

    ref, got = th.final_state(single, 8), th.final_state(ddp_dir, 8)
    assert sorted(ref) == sorted(got)
    for key in ref:
        if key.startswith("codes.") or key in ("protocol.B", "protocol.sample_index", "protocol.S"):
            assert torch.equal(ref[key], got[key]), key
        else:
            torch.testing.assert_close(got[key], ref[key], rtol=1e-5, atol=1e-5, msg=key)
    import json

    env = json.loads((ddp_dir / "environment.json").read_text())
    assert env["world_size"] == 2
    report = json.loads((ddp_dir / "report.json").read_text())
    assert report["world_size"] == 2


def test_shard_weights_recover_the_global_mean():
    """Chunk sizes b_r and weights b_r * W / b: the average of weighted chunk means is the global mean."""
    from hashkit.training.ddp import DistInfo, shard

    batch = torch.arange(5)
    values = torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0])
    total = 0.0
    for rank in range(3):
        local, weight = shard(batch, DistInfo(rank=rank, world_size=3))
        assert len(local) == len(torch.tensor_split(batch, 3)[rank])
        total += values[local].mean().item() * weight
    assert total / 3 == pytest.approx(values.mean().item())
    local, weight = shard(torch.arange(1), DistInfo(rank=1, world_size=2))
    assert weight == 0.0 and len(local) == 1
