"""``knn_graph``: GDF-Net's graph-based reconstruction of part features (GSRR) on a dynamic kNN graph.

Data flow for a batch (B images, M attention maps, C channels):

1. nodes ``v_m = pool_hw(F ⊙ A_m)`` -> ``X0 (B, M, C)`` (GMP by default, as the GDF-Net code);
2. per image, a kNN graph over its M nodes in feature space (k nearest, the node itself included),
   computed batched in pure torch (:mod:`hashkit_plugins.aggregation._knn`);
3. ``layers`` EdgeConv layers (``torch_geometric.nn.EdgeConv``, max aggregation) with edge network
   ``Linear(2C -> C', no bias) + BatchNorm + LeakyReLU(0.2)`` on ``[x_i ; x_j - x_i]``; the graph is
   recomputed on each layer's input (dynamic, DGCNN), unless ``dynamic = false``;
4. readout: the layer outputs concatenated along channels ``(B, layers·C', M)``, flattened channel-major
   (index ``c·M + m``), signed square root, L2 normalisation -> ``"graph" (B, layers·C'·M)``.

With ``include_bap = true`` (default) the descriptor dict is ``{"bap": (B, M·C), "graph": ...}``: GDF-Net's
fused feature ``z = [BAP ; GSRR]`` is their concatenation. Extras: ``part_features`` (the BAP parts,
``(B, M, C)``) and ``graph_nodes`` (``X0``). Same shapes in train and eval; in train mode BatchNorm uses the
statistics of all edges of the batch, so per-image results match batched ones only in eval mode.

The author code orders the edge feature ``[x_j - x_i ; x_i]``; PyG's EdgeConv uses ``[x_i ; x_j - x_i]``,
a permutation of the first layer's input columns (an equivalent parametrisation).

Size: the fused descriptor has ``D = M·C + layers·C'·M`` dimensions (3·M·C for GDF-Net: 73,728 at C = 768,
M = 32), and a linear hash layer on it ``D·L`` weights (3.5 M at L = 48). Building warns (``UserWarning``)
when ``D·L`` exceeds ``warn_hash_weights`` (e.g. ResNet-50's C = 2048 at M = 32: 196,608 dims, 9.4 M weights
at 48 bits); reduce the attention's ``num_maps`` or set ``hidden``.

Not exportable to ONNX (``onnx_export_blocker``): torch.onnx has no conversion for the kNN search's
``torch.cdist``. The EdgeConv layers themselves export.
"""

from __future__ import annotations

import warnings
from typing import Literal

import attrs
import torch
from einops import rearrange
from torch import Tensor, nn

from hashkit.errors import ContractError
from hashkit.interfaces import Aggregation, AggregationInput, AggregationOutput, BuildContext
from hashkit_plugins.aggregation._knn import KNN_EXPORT_BLOCKER, knn_edge_index
from hashkit_plugins.aggregation._parts import part_features, signed_sqrt_l2
from hashkit_plugins.aggregation.bilinear_pooling import maps_example


@attrs.frozen
class KnnGraphConfig:
    #: neighbours per node, the node itself included (GDF-Net: 3)
    k: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    #: EdgeConv layers (GDF-Net: 2)
    layers: int = attrs.field(default=2, validator=attrs.validators.ge(1))
    #: output channels of each EdgeConv (0 = the input channel count C, as GDF-Net)
    hidden: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    #: recompute the kNN graph on every layer's input (dynamic graph); false = graph of the input nodes
    dynamic: bool = True
    #: spatial pooling of the attention-weighted maps into node features (GDF-Net: max)
    node_pool: Literal["max", "avg"] = "max"
    #: distance of the kNN search
    metric: Literal["euclidean", "cosine"] = "euclidean"
    #: also output the BAP descriptor (GAP parts), giving GDF-Net's fused [BAP ; GSRR]
    include_bap: bool = True
    negative_slope: float = 0.2
    #: epsilon inside the signed square roots
    eps: float = attrs.field(default=1e-12, validator=attrs.validators.gt(0.0))
    #: warn when a linear hash layer on the descriptor would have more weights (D x L) than this; 0 = never
    warn_hash_weights: int = attrs.field(default=4_000_000, validator=attrs.validators.ge(0))


def edge_mlp(in_channels: int, out_channels: int, negative_slope: float) -> nn.Sequential:
    """GDF-Net's edge network on ``[x_i ; x_j - x_i]`` (2·in -> out): linear without bias, BN, LeakyReLU."""
    return nn.Sequential(nn.Linear(2 * in_channels, out_channels, bias=False), nn.BatchNorm1d(out_channels),
                         nn.LeakyReLU(negative_slope))


class KnnGraphAggregation(Aggregation):
    def __init__(self, cfg: KnnGraphConfig, channels: int, num_maps: int):
        from torch_geometric.nn import EdgeConv  # imported on use: loading the plugins stays light

        super().__init__()
        self.cfg = cfg
        self.num_maps = num_maps
        width = cfg.hidden or channels
        self.convs = nn.ModuleList(
            EdgeConv(edge_mlp(channels if i == 0 else width, width, cfg.negative_slope), aggr="max")
            for i in range(cfg.layers)
        )
        dims = {"bap": num_maps * channels} if cfg.include_bap else {}
        dims["graph"] = cfg.layers * width * num_maps
        self.descriptor_dims = dims

    def onnx_export_blocker(self) -> str:
        """Read by ``hashkit export``: the neighbour search cannot be converted."""
        return KNN_EXPORT_BLOCKER

    def graph_layers(self, nodes: Tensor) -> list[Tensor]:
        """``(B, M, C) -> [(B, M, C')] * layers``, the outputs of each EdgeConv layer."""
        b, m, _ = nodes.shape
        cosine = self.cfg.metric == "cosine"
        x = nodes
        edge_index = knn_edge_index(x, self.cfg.k, cosine=cosine)
        outs = []
        for i, conv in enumerate(self.convs):
            if i > 0 and self.cfg.dynamic:
                edge_index = knn_edge_index(x, self.cfg.k, cosine=cosine)
            flat = conv(rearrange(x, "b m c -> (b m) c"), edge_index)
            x = rearrange(flat, "(b m) c -> b m c", b=b, m=m)
            outs.append(x)
        return outs

    def forward(self, inp: AggregationInput) -> AggregationOutput:
        nodes = part_features(inp.features, inp.maps, self.cfg.node_pool)
        if nodes.shape[1] != self.num_maps:
            raise ContractError(f"knn_graph was built for {self.num_maps} attention maps, received {nodes.shape[1]}")
        outs = self.graph_layers(nodes)
        graph = rearrange(torch.cat(outs, dim=-1), "b m c -> b (c m)")
        descriptors = {}
        extras = {"graph_nodes": nodes}
        if self.cfg.include_bap:
            parts = nodes if self.cfg.node_pool == "avg" else part_features(inp.features, inp.maps, "avg")
            descriptors["bap"] = signed_sqrt_l2(rearrange(parts, "b m c -> b (m c)"), self.cfg.eps)
            extras["part_features"] = parts
        descriptors["graph"] = signed_sqrt_l2(graph, self.cfg.eps)
        return AggregationOutput(descriptors=descriptors, extras=extras)


def build_knn_graph(cfg: KnnGraphConfig, ctx: BuildContext) -> KnnGraphAggregation:
    """Parts as graph nodes, dynamic kNN graph + EdgeConv layers (GDF-Net GSRR), optionally fused with BAP."""
    channels = ctx.input_channels("knn_graph")
    if ctx.num_maps < 1:
        raise ContractError("knn_graph needs attention maps as graph nodes: add an attention component with maps "
                            "(e.g. attention_parts or sem) to [[model.attention]]")
    if cfg.k > ctx.num_maps:
        raise ContractError(f"knn_graph k = {cfg.k} exceeds the {ctx.num_maps} nodes (attention maps) per image")
    agg = KnnGraphAggregation(cfg, channels, ctx.num_maps)
    dims = sum(agg.descriptor_dims.values())
    if cfg.warn_hash_weights and ctx.code_length and dims * ctx.code_length > cfg.warn_hash_weights:
        warnings.warn(f"knn_graph: the descriptor has {dims:,} dims ({ctx.num_maps} maps x {channels} channels), "
                      f"so a linear hash layer at {ctx.code_length} bits has {dims * ctx.code_length:,} weights; "
                      f"reduce the attention's num_maps or set hidden (warn_hash_weights = "
                      f"{cfg.warn_hash_weights:,})", UserWarning, stacklevel=2)
    return agg


def components(register):
    register("aggregation", "knn_graph", build_knn_graph, config=KnnGraphConfig, example=maps_example)
