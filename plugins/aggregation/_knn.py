"""Batched dense kNN graphs in pure torch (PyG's own ``knn_graph`` needs pyg-lib, which is not installable).

Every graph of the batch has the same node count N (parts or patches per image), so the search runs on a
``(B, N, D)`` tensor with one pairwise-distance matrix per graph: no Python loop over graphs and no edges
between graphs.

- :func:`knn_indices`: ``x (B, N, D) -> (B, N, k)`` int64 node indices (within the graph) of the k nearest
  nodes of every node. Squared Euclidean distance (or cosine distance with ``cosine=True``). With
  ``self_loops=True`` the node itself is always its first neighbour (GDF-Net's k = 3 includes the node).
  Ties are broken by the lower node index (a stable sort), so the result is deterministic.
- :func:`edge_index_from_knn`: ``(B, N, k) -> (2, B·N·k)`` PyG ``edge_index`` over the flattened nodes
  ``b·N + i`` in the ``source_to_target`` convention: row 0 is the neighbour j (source), row 1 the centre i
  (target), so every node receives exactly k messages.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: why a component that searches neighbours with :func:`knn_indices` cannot be exported (``hashkit export``)
KNN_EXPORT_BLOCKER = ("its kNN graph search (torch.cdist + sort) has no ONNX conversion in torch.onnx "
                      "(aten::_cdist_forward)")


def pairwise_sq_distances(x: Tensor) -> Tensor:
    """``(B, N, D) -> (B, N, N)`` squared Euclidean distances, computed pair by pair (no ``a²+b²-2ab``
    cancellation, so identical nodes are at distance exactly 0)."""
    return torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist").pow(2)


def knn_indices(x: Tensor, k: int, *, self_loops: bool = True, cosine: bool = False) -> Tensor:
    """Indices ``(B, N, k')`` of the k nearest nodes per node, ``k' = min(k, N)`` (``N - 1`` without self
    loops), nearest first; see the module docstring. Computed without gradient (indices only)."""
    if x.ndim != 3:
        raise ValueError(f"knn_indices expects (B, N, D) node features, got shape {tuple(x.shape)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n = x.shape[1]
    with torch.no_grad():
        feats = x.detach().float()
        if cosine:
            feats = F.normalize(feats, dim=-1)
        dist = pairwise_sq_distances(feats)
        eye = torch.eye(n, dtype=torch.bool, device=x.device)
        # self first (below every distance) or never (above every distance)
        dist = dist.masked_fill(eye, -1.0 if self_loops else float("inf"))
        available = n if self_loops else n - 1
        k_eff = min(k, available)
        if k_eff < 1:
            raise ValueError(f"a graph of {n} node(s) has no neighbours without self loops")
        order = torch.sort(dist, dim=-1, stable=True).indices
    return order[..., :k_eff]


def edge_index_from_knn(idx: Tensor) -> Tensor:
    """``(B, N, k)`` neighbour indices -> ``(2, B·N·k)`` int64 ``edge_index`` (source = neighbour,
    target = centre) over nodes flattened as ``b·N + i``."""
    b, n, k = idx.shape
    offsets = (torch.arange(b, device=idx.device) * n).view(b, 1, 1)
    source = (idx + offsets).reshape(-1)
    target = (torch.arange(n, device=idx.device).view(1, n, 1) + offsets).expand(b, n, k).reshape(-1)
    return torch.stack([source, target])


def knn_edge_index(x: Tensor, k: int, *, self_loops: bool = True, cosine: bool = False) -> Tensor:
    """``(B, N, D)`` -> ``edge_index (2, B·N·k')`` of the per-graph kNN graphs (see the module docstring)."""
    return edge_index_from_knn(knn_indices(x, k, self_loops=self_loops, cosine=cosine))
