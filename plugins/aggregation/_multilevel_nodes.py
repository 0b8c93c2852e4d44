"""Private: graph nodes from several backbone stages, for ``gnn_multilevel``.

Two layouts (docs/methods/fdhmfe.md):

- ``grid``: per stage ``s`` an adaptive average pool to a ``g_s x g_s`` grid, then ``Linear(C_s -> d)`` per
  grid cell: ``Σ_s g_s²`` nodes (21 for grids 4, 2, 1);
- ``stage``: one node per stage as in FG-CNET: ``Conv1x1(C_s -> hidden) + BN + ReLU``,
  ``Conv3x3(hidden -> d) + BN + ReLU``, global max pool.

Both add a learnable stage embedding (one ``d``-vector per stage, on every node of that stage) and, optionally,
a learnable per-node position embedding. Output ``(B, N, d)``; ``stage_of_node`` ``(N,)`` says which stage
each node comes from.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


def _small_normal(*shape: int) -> Tensor:
    """``randn(shape) * 0.02``, multiplied in place: the same values, and on the meta device (``hashkit recipe
    validate``) an out-of-place scalar product would import torch._dynamo (seconds)."""
    return torch.randn(*shape).mul_(0.02)


class GridNodes(nn.Module):
    """``[(B, C_s, H_s, W_s)] -> (B, Σ g_s², d)``."""

    def __init__(self, channels: Sequence[int], grids: Sequence[int], dim: int, position_embedding: bool):
        super().__init__()
        self.grids = tuple(grids)
        self.proj = nn.ModuleList([nn.Linear(c, dim) for c in channels])
        counts = [g * g for g in self.grids]
        # built from a Python list (not repeat_interleave), so it also builds on the meta device
        stage_of_node = [stage for stage, count in enumerate(counts) for _ in range(count)]
        self.register_buffer("stage_of_node", torch.tensor(stage_of_node), persistent=False)
        self.stage_embedding = nn.Parameter(_small_normal(len(counts), dim))
        self.position_embedding = nn.Parameter(_small_normal(sum(counts), dim)) if position_embedding else None

    def forward(self, maps: Sequence[Tensor]) -> Tensor:
        nodes = []
        for x, g, proj in zip(maps, self.grids, self.proj):
            cells = rearrange(F.adaptive_avg_pool2d(x, g), "b c h w -> b (h w) c")
            nodes.append(proj(cells))
        h = torch.cat(nodes, dim=1) + self.stage_embedding[self.stage_of_node]
        return h + self.position_embedding if self.position_embedding is not None else h


class StageNodes(nn.Module):
    """``[(B, C_s, H_s, W_s)] -> (B, S, d)``: one node per stage (FG-CNET style)."""

    def __init__(self, channels: Sequence[int], dim: int, hidden: int):
        super().__init__()
        self.blocks = nn.ModuleList([
            nn.Sequential(
                nn.Conv2d(c, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
                nn.Conv2d(hidden, dim, 3, padding=1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(inplace=True),
            )
            for c in channels
        ])
        self.register_buffer("stage_of_node", torch.arange(len(channels)), persistent=False)
        # one node per stage: the stage embedding is also the node's position embedding
        self.stage_embedding = nn.Parameter(_small_normal(len(channels), dim))

    def forward(self, maps: Sequence[Tensor]) -> Tensor:
        nodes = [block(x).amax(dim=(2, 3)) for x, block in zip(maps, self.blocks)]
        return torch.stack(nodes, dim=1) + self.stage_embedding
