"""``gnn_multilevel``: multi-level graph aggregation (FDH-MFE design, docs/methods/fdhmfe.md) [inferred design].

Nodes come from several backbone stages (``ctx.stages``; ResNet-50 layer2..4 via ``model.taps``), projected
to a common width ``d`` with a learnable stage embedding (layouts ``grid`` and ``stage``, see
``_multilevel_nodes``). A GNN of ``num_layers`` residual layers relates them::

    H <- LayerNorm(H + GELU(layer(H, graph)))

- ``layer``: ``attention`` (the design's default: ``Â = softmax((H W_q)(H W_k)ᵀ / √d)`` over nodes,
  ``layer = Â H W_v``, dense torch), or torch-geometric ``gat`` (``GATConv``), ``gcn`` (``GCNConv``),
  ``edgeconv`` (``EdgeConv`` on ``[h_j - h_i ; h_i]`` with Linear + BatchNorm + LeakyReLU(0.2), max);
- ``graph``: ``dense`` (every node linked to every node of its image, self included) or ``knn`` (each node's
  ``k`` nearest nodes of its image in the layer's input features, self included, recomputed per layer).

All graphs of a batch have the same node count, so the batch is one disconnected PyG graph whose
``edge_index`` is the per-image pattern shifted by ``image * N`` (no Python loop over images); the kNN
search is the batched pure-torch one of ``_knn`` (pyg-lib is not available). Readout: ``[mean_n ; max_n]``,
then BatchNorm1d (``readout_norm``; the first layer of the design's hash head).

Background suppression: the last stage is the attention-refined map ``AggregationInput.features``
(``use_features``), and attention map ``mask_map`` (the ``background_suppression`` soft mask) multiplies the
other stages after a nearest resize, so every node sees the suppressed view.

Tensor contract: stages ``{name: (B, C_s, H_s, W_s)}``, maps ``(B, K, h, w)`` or ``None`` ->
descriptors ``{"global": (B, 2d)}`` (``(B, d)`` with a ``mean`` or ``max`` readout); ``extras["nodes"]``
``(B, N, d)`` the node features after the GNN. Same in train and eval mode (up to BatchNorm statistics).

ONNX export: every ``layer`` exports with ``graph = "dense"`` (the PyG layers too); ``graph = "knn"`` does
not (``onnx_export_blocker``: the neighbour search uses ``torch.cdist``, which torch.onnx cannot convert).
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from hashkit.errors import ContractError
from hashkit.interfaces import Aggregation, AggregationInput, AggregationOutput, BuildContext, FeatureSpec
from hashkit_plugins.aggregation._knn import KNN_EXPORT_BLOCKER, edge_index_from_knn, knn_indices
from hashkit_plugins.aggregation._multilevel_nodes import GridNodes, StageNodes


@attrs.frozen
class GNNMultilevelConfig:
    #: stages that become nodes, in order (default: every stage the model taps, in tap order)
    stages: tuple[str, ...] = ()
    #: the last stage is taken from AggregationInput.features (after the attention cascade)
    use_features: bool = True
    #: attention map (index) multiplied onto the other stages (nearest resize); -1 = none; ignored without maps
    mask_map: int = attrs.field(default=0, validator=attrs.validators.ge(-1))
    #: node layout: a g x g grid per stage, or one node per stage
    nodes: Literal["grid", "stage"] = "grid"
    #: grid size g per stage (grid layout), same length as the stages
    grids: tuple[int, ...] = (4, 2, 1)
    #: common node width d
    dim: int = attrs.field(default=512, validator=attrs.validators.ge(1))
    #: stage layout: width of the 1x1 conv before the 3x3 conv
    stage_hidden: int = attrs.field(default=512, validator=attrs.validators.ge(1))
    #: grid layout: add a learnable per-node position embedding to the stage embedding
    position_embedding: bool = True
    layer: Literal["attention", "gat", "gcn", "edgeconv"] = "attention"
    graph: Literal["dense", "knn"] = "dense"
    #: neighbours per node in the kNN graph, self included
    k: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    num_layers: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    #: GAT attention heads (averaged)
    heads: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    readout: Literal["mean_max", "mean", "max"] = "mean_max"
    #: BatchNorm1d on the readout: the first layer of the design's hash head (BN1d(1024) -> Linear -> BN -> ELU ->
    #: Linear -> tanh), kept here because the ``linear`` head has no BatchNorm; it removes the part of the
    #: descriptor shared by every image, which otherwise dominates and collapses all codes to one
    readout_norm: Literal["batchnorm", "none"] = "batchnorm"


class _DenseAttentionLayer(nn.Module):
    """``Â H W_v`` with ``Â = softmax(QKᵀ/√d)``, masked to the graph's edges: ``(B, N, d) -> (B, N, d)``."""

    def __init__(self, dim: int):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.scale = dim ** -0.5

    def forward(self, h: Tensor, neighbours: Tensor | None) -> Tensor:
        scores = self.q(h) @ self.k(h).transpose(1, 2) * self.scale
        if neighbours is not None:
            allowed = torch.zeros_like(scores, dtype=torch.bool).scatter_(2, neighbours, True)
            scores = scores.masked_fill(~allowed, float("-inf"))
        return scores.softmax(dim=2) @ self.v(h)


class _PyGLayer(nn.Module):
    """A torch-geometric message-passing layer applied to the batch as one disconnected graph."""

    def __init__(self, kind: str, dim: int, heads: int):
        from torch_geometric.nn import EdgeConv, GATConv, GCNConv  # imported on use: plugin loading stays light

        super().__init__()
        if kind == "gat":
            self.conv = GATConv(dim, dim, heads=heads, concat=False, add_self_loops=False)
        elif kind == "gcn":
            self.conv = GCNConv(dim, dim, add_self_loops=False)
        else:
            self.conv = EdgeConv(nn.Sequential(nn.Linear(2 * dim, dim), nn.BatchNorm1d(dim), nn.LeakyReLU(0.2)),
                                 aggr="max")

    def forward(self, h: Tensor, neighbours: Tensor) -> Tensor:
        b, n, _ = h.shape
        out = self.conv(rearrange(h, "b n d -> (b n) d"), edge_index_from_knn(neighbours))
        return rearrange(out, "(b n) d -> b n d", b=b, n=n)


class MultilevelGNN(nn.Module):
    """The GNN over node features ``(B, N, d) -> (B, N, d)``; permutation-equivariant over nodes."""

    def __init__(self, dim: int, num_layers: int, layer: str, graph: str, k: int, heads: int):
        super().__init__()
        self.graph, self.k, self.layer_kind = graph, k, layer
        make = (lambda: _DenseAttentionLayer(dim)) if layer == "attention" else (lambda: _PyGLayer(layer, dim, heads))
        self.layers = nn.ModuleList([make() for _ in range(num_layers)])
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in range(num_layers)])

    def onnx_export_blocker(self) -> str | None:
        """Read by ``hashkit export``: dense graphs export (PyG layers included), kNN graphs do not."""
        return KNN_EXPORT_BLOCKER if self.graph == "knn" else None

    def neighbours(self, h: Tensor) -> Tensor | None:
        b, n, _ = h.shape
        if self.graph == "knn":
            return knn_indices(h, self.k, self_loops=True)
        if self.layer_kind == "attention":
            return None  # dense attention needs no mask
        return torch.arange(n, device=h.device).view(1, 1, n).expand(b, n, n)

    def forward(self, h: Tensor) -> Tensor:
        for layer, norm in zip(self.layers, self.norms):
            h = norm(h + F.gelu(layer(h, self.neighbours(h))))
        return h


class GNNMultilevel(Aggregation):
    def __init__(self, cfg: GNNMultilevelConfig, stages: dict[str, FeatureSpec], last_channels: int, num_maps: int):
        super().__init__()
        self.cfg = cfg
        self.stage_names = tuple(stages)
        channels = [spec.channels for spec in stages.values()]
        if cfg.use_features:
            channels[-1] = last_channels
        self.mask_map = cfg.mask_map if num_maps > 0 else -1
        if cfg.nodes == "grid":
            self.nodes = GridNodes(channels, cfg.grids, cfg.dim, cfg.position_embedding)
        else:
            self.nodes = StageNodes(channels, cfg.dim, cfg.stage_hidden)
        self.gnn = MultilevelGNN(cfg.dim, cfg.num_layers, cfg.layer, cfg.graph, cfg.k, cfg.heads)
        width = 2 * cfg.dim if cfg.readout == "mean_max" else cfg.dim
        self.readout_norm = nn.BatchNorm1d(width) if cfg.readout_norm == "batchnorm" else nn.Identity()
        self.descriptor_dims = {"global": width}

    def stage_maps(self, inp: AggregationInput) -> list[Tensor]:
        """The per-stage maps the nodes are built from (suppressed by the attention mask when there is one)."""
        maps = []
        last = len(self.stage_names) - 1
        for i, name in enumerate(self.stage_names):
            if i == last and self.cfg.use_features:
                maps.append(inp.features)
                continue
            if name not in inp.stages:
                raise ContractError(f"gnn_multilevel reads stage {name!r} but the model gave {sorted(inp.stages)}")
            x = inp.stages[name]
            if self.mask_map >= 0 and inp.maps is not None:
                mask = F.interpolate(inp.maps[:, self.mask_map : self.mask_map + 1], size=x.shape[-2:], mode="nearest")
                x = x * mask
            maps.append(x)
        return maps

    def forward(self, inp: AggregationInput) -> AggregationOutput:
        h = self.gnn(self.nodes(self.stage_maps(inp)))
        if self.cfg.readout == "mean_max":
            desc = torch.cat([h.mean(dim=1), h.amax(dim=1)], dim=1)
        elif self.cfg.readout == "mean":
            desc = h.mean(dim=1)
        else:
            desc = h.amax(dim=1)
        return AggregationOutput(descriptors={"global": self.readout_norm(desc)}, extras={"nodes": h})


def build_gnn_multilevel(cfg: GNNMultilevelConfig, ctx: BuildContext) -> GNNMultilevel:
    """Nodes from several backbone stages related by a GNN (attention/GAT/GCN/EdgeConv), mean+max readout."""
    if not ctx.stages:
        raise ContractError("gnn_multilevel needs the model's tapped stages (recipe model.taps)")
    names = cfg.stages or tuple(ctx.stages)
    missing = [n for n in names if n not in ctx.stages]
    if missing:
        raise ContractError(f"gnn_multilevel stages {missing} are not tapped; model.taps gives {list(ctx.stages)}")
    if cfg.nodes == "grid" and len(cfg.grids) != len(names):
        raise ContractError(f"gnn_multilevel grids {list(cfg.grids)} must give one grid size per stage {list(names)}")
    if ctx.num_maps and cfg.mask_map >= ctx.num_maps:
        raise ContractError(f"gnn_multilevel mask_map = {cfg.mask_map} but the attention gives {ctx.num_maps} maps")
    use = ctx.input_channels("gnn_multilevel with use_features = true") if cfg.use_features else None
    last = use if use is not None else ctx.stages[names[-1]].channels
    return GNNMultilevel(cfg, {n: ctx.stages[n] for n in names}, last, ctx.num_maps)


def _example():
    from hashkit.testing import ComponentExample

    g = torch.Generator().manual_seed(0)
    stages = {"stage2": FeatureSpec(8, 4), "stage3": FeatureSpec(16, 8), "stage4": FeatureSpec(32, 16)}
    x = {"stage2": torch.randn(2, 8, 16, 16, generator=g), "stage3": torch.randn(2, 16, 8, 8, generator=g),
         "stage4": torch.randn(2, 32, 4, 4, generator=g)}
    maps = (torch.rand(2, 1, 4, 4, generator=g) > 0.5).float() * 0.5 + 0.5
    inp = AggregationInput(features=x["stage4"] * maps, maps=maps, stages=x)
    return ComponentExample(
        config={"dim": 8, "stage_hidden": 8},
        ctx=BuildContext(in_spec=stages["stage4"], stages=stages, num_maps=1, code_length=12, num_classes=5),
        inputs=(inp,),
    )


def components(register):
    register("aggregation", "gnn_multilevel", build_gnn_multilevel, config=GNNMultilevelConfig, example=_example)
