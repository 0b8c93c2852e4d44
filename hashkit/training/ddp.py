"""Data-parallel training with ``torch.distributed`` (DDP), launched by ``torchrun``.

How a global batch is split [inferred design]
---------------------------------------------
Every rank computes the same list of *global* batches (the same seeded generator), and rank ``r`` of ``W``
takes the ``r``-th of ``W`` contiguous chunks of each (``torch.tensor_split``): the sharding a
``DistributedSampler`` would give, but per batch, so the global batch is exactly the single-process batch.
Each rank scales its mean loss by ``b_r * W / b`` (``b_r`` its chunk, ``b`` the global batch), so DDP's
gradient average equals the gradient of the single-process mean loss even when chunks are uneven. A rank
whose chunk is empty (a last batch smaller than ``W``) runs the first item with weight 0.

Protocol state (ADSH's ``U``, ``B``)
------------------------------------
``observe()`` needs every rank's codes: the codes of a global batch are all-gathered (padded to the largest
chunk, then cut) and every rank applies the *whole* global batch, in global order, to its protocol copy.
After ``end_round()`` (the DCC update of ``B``) rank 0's protocol state is broadcast, so all ranks hold
bit-identical state even when a GPU reduction order differs.

Loss parameters (proxies, centres) are not inside the DDP-wrapped model: their gradients are all-reduced
(averaged) explicitly after ``backward``. Only rank 0 writes files (checkpoints, logs, reports) and
evaluates; the others wait at a barrier.
"""

from __future__ import annotations

import datetime
import os
from typing import Iterable

import attrs
import torch
import torch.distributed as dist
from torch import Tensor, nn


@attrs.define
class DistInfo:
    """Where this process sits in the job. ``world_size == 1`` is the plain single-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group described by torchrun's environment (``RANK``, ``WORLD_SIZE``, ...).

    Without those variables (or with ``WORLD_SIZE=1``) this is a single-process run. The backend is NCCL on
    CUDA and gloo on CPU; ``HASHKIT_DIST_BACKEND`` overrides it.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    created = False
    if not dist.is_initialized():
        backend = os.environ.get("HASHKIT_DIST_BACKEND") or ("nccl" if device_type == "cuda" else "gloo")
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, rank=rank, world_size=world,
                                timeout=datetime.timedelta(minutes=60))
        created = True
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank,
                    initialised_here=created)


def shutdown(info: DistInfo) -> None:
    if info.initialised_here and dist.is_initialized():
        dist.destroy_process_group()


def shard(batch: Tensor, info: DistInfo) -> tuple[Tensor, float]:
    """This rank's chunk of a global batch of indices and its loss weight ``b_r * W / b``."""
    if not info.enabled:
        return batch, 1.0
    chunk = torch.tensor_split(batch, info.world_size)[info.rank]
    if chunk.numel() == 0:
        return batch[:1], 0.0
    return chunk, chunk.numel() * info.world_size / batch.numel()


def gather_codes(local_codes: Tensor, batch: Tensor, info: DistInfo) -> Tensor:
    """Codes of the whole global ``batch`` in its order, from every rank's chunk (rank order)."""
    if not info.enabled:
        return local_codes
    sizes = [c.numel() for c in torch.tensor_split(batch, info.world_size)]
    width = max(max(sizes), 1)
    padded = local_codes.new_zeros((width, local_codes.shape[1]))
    own = sizes[info.rank]
    if own:
        padded[:own] = local_codes[:own]
    parts = [torch.empty_like(padded) for _ in range(info.world_size)]
    dist.all_gather(parts, padded)
    return torch.cat([p[:n] for p, n in zip(parts, sizes)], dim=0)


def all_reduce_sum(values: Tensor, info: DistInfo) -> Tensor:
    if info.enabled:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def average_gradients(params: Iterable[nn.Parameter], info: DistInfo) -> None:
    """Average the gradients of parameters that live outside the DDP wrapper (loss parameters)."""
    if not info.enabled:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        p.grad.div_(info.world_size)


def broadcast_state(state: dict[str, Tensor], info: DistInfo) -> dict[str, Tensor]:
    """Rank 0's tensors on every rank (same keys and shapes on all ranks are required)."""
    if not info.enabled:
        return state
    out = {}
    for key in sorted(state):
        t = state[key].detach().clone().contiguous()
        dist.broadcast(t, src=0)
        out[key] = t
    return out


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def wrap_model(model: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """DDP around ``model`` (BatchNorm converted to SyncBatchNorm on CUDA so batch statistics are global)."""
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(model, device_ids=[device.index], output_device=device.index)
    return DistributedDataParallel(model)
