"""Deterministic seeds derived from the training position, and image loading with per-sample seeds.

Every random draw of a run derives from ``(recipe seed, code length, what, round, epoch, batch, ...)`` through
:func:`derive_seed`, never from a generator that carries state across the run. So a run resumed at any
batch replays exactly what an uninterrupted run does, and a code length trained alone equals the same
length trained after others [inferred design: the official SEMICON code seeds once per process, so there
the RNG state of the second code length depends on the first].

Augmentations (``RandomResizedCrop``, flips) draw from torch's global CPU generator; :class:`SeededImages`
re-seeds it per sample from the sample's batch seed and position in the global batch, so images are the
same with any ``num_workers`` and any number of DDP ranks.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any, Iterable

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

_MASK63 = (1 << 63) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from any printable parts (stable across processes and Python versions)."""
    text = "\x1f".join(repr(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") & _MASK63


def generator(*parts: Any) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(*parts))


def sample_seed(batch_seed: int, position: int) -> int:
    return (batch_seed + (position + 1) * _GOLDEN) & _MASK63


def seed_globals(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and python ``random`` (model initialisation, dropout)."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    random.seed(seed)


class SeededImages(Dataset):
    """``dataset[(index, seed)]``: item ``index`` of ``base`` with torch's CPU generator seeded by ``seed``."""

    def __init__(self, base: Dataset):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        torch.random.default_generator.manual_seed(seed)
        random.seed(seed)
        return self.base[int(index)]


def seeded_keys(local: Tensor, batch_seed: int, offset: int) -> list[tuple[int, int]]:
    """``(index, seed)`` keys of a rank's chunk whose first item sits at ``offset`` in the global batch."""
    return [(int(i), sample_seed(batch_seed, offset + j)) for j, i in enumerate(local.tolist())]


def batch_loader(dataset: Dataset, batches: Iterable[list[tuple[int, int]]], num_workers: int, pin: bool):
    """A DataLoader yielding ``(images, targets, indices)`` for the given key batches, in order."""
    from torch.utils.data import DataLoader

    return DataLoader(SeededImages(dataset), batch_sampler=list(batches), num_workers=num_workers,
                      pin_memory=pin, generator=torch.Generator().manual_seed(0))
