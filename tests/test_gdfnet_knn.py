"""The batched kNN graph against a brute-force per-image search, and EdgeConv on a batch of graphs."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hashkit.assemble import make_component
from hashkit.interfaces import AggregationInput, BuildContext, FeatureSpec
from hashkit_plugins.aggregation._knn import edge_index_from_knn, knn_edge_index, knn_indices


def brute_force_knn(x: torch.Tensor, k: int, self_loops: bool = True) -> list[list[list[int]]]:
    """Per image, per node: sort the other nodes by (squared distance, index) in float64, node itself first."""
    out = []
    for img in x.double():
        n = img.shape[0]
        rows = []
        for i in range(n):
            others = []
            for j in range(n):
                if j == i:
                    continue
                d = float(((img[i] - img[j]) ** 2).sum())
                others.append((d, j))
            others.sort()
            order = ([i] if self_loops else []) + [j for _, j in others]
            rows.append(order[: min(k, len(order))])
        out.append(rows)
    return out


@settings(max_examples=40, deadline=None)
@given(b=st.integers(1, 4), n=st.integers(1, 9), d=st.integers(1, 5), k=st.integers(1, 6),
       self_loops=st.booleans(), seed=st.integers(0, 10_000))
def test_knn_equals_brute_force_with_exact_ties(b, n, d, k, self_loops, seed):
    # small integer coordinates: distances are exact in float32 and ties (incl. duplicate nodes) are common
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(-2, 3, (b, n, d), generator=g).float()
    if not self_loops and n == 1:  # a lone node has no neighbour but itself
        with pytest.raises(ValueError, match="no neighbours"):
            knn_indices(x, k, self_loops=False)
        return
    idx = knn_indices(x, k, self_loops=self_loops)
    assert idx.tolist() == brute_force_knn(x, k, self_loops)


@settings(max_examples=30, deadline=None)
@given(b=st.integers(1, 4), n=st.integers(2, 12), d=st.integers(1, 16), k=st.integers(1, 5),
       seed=st.integers(0, 10_000))
def test_knn_distances_equal_brute_force_on_real_features(b, n, d, k, seed):
    # real-valued features: compare the neighbours' distances (robust to float near-ties)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, d, generator=g)
    idx = knn_indices(x, k)
    ref = brute_force_knn(x, k)
    xd = x.double()
    for bi in range(b):
        for i in range(n):
            got = [float(((xd[bi, i] - xd[bi, j]) ** 2).sum()) for j in idx[bi, i].tolist()]
            want = [float(((xd[bi, i] - xd[bi, j]) ** 2).sum()) for j in ref[bi][i]]
            assert got == pytest.approx(want, rel=1e-5, abs=1e-5)
            assert idx[bi, i, 0] == i  # the node itself first


def test_cosine_knn_is_scale_free():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 8, 4, generator=g)
    scales = torch.rand(3, 8, 1, generator=g) * 10 + 0.1
    assert torch.equal(knn_indices(x, 3, cosine=True), knn_indices(x * scales, 3, cosine=True))


def test_edge_index_is_source_to_target_within_each_graph():
    g = torch.Generator().manual_seed(2)
    b, n, k = 3, 5, 3
    x = torch.randn(b, n, 4, generator=g)
    idx = knn_indices(x, k)
    ei = knn_edge_index(x, k)
    assert ei.shape == (2, b * n * k) and ei.dtype == torch.int64
    source, target = ei
    assert torch.equal(source // n, target // n)  # no edges between images
    assert torch.equal(torch.bincount(target, minlength=b * n), torch.full((b * n,), k))  # in-degree k
    for s, t in ei.t().tolist():
        assert (s % n) in idx[t // n, t % n].tolist()  # source is one of the centre's neighbours
    assert torch.equal(edge_index_from_knn(idx), ei)


# ---------------------------------------------------------------- EdgeConv on the graph
def _aggregation(channels=6, maps=5, **params):
    spec = FeatureSpec(channels, 8)
    ctx = BuildContext(in_spec=spec, stages={"s": spec}, num_maps=maps)
    agg = make_component("aggregation", "knn_graph", params, ctx)
    g = torch.Generator().manual_seed(3)
    for m in agg.modules():  # non-trivial BatchNorm running statistics and affine parameters
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return agg.eval()


def _edgeconv_reference(x: torch.Tensor, mlp: torch.nn.Module, k: int) -> torch.Tensor:
    """One image (N, C): for each node i, max over its brute-force neighbours j of mlp([x_i ; x_j - x_i])."""
    neighbours = brute_force_knn(x[None], k)[0]
    rows = []
    for i, nbrs in enumerate(neighbours):
        feats = torch.stack([torch.cat([x[i], x[j] - x[i]]) for j in nbrs])
        rows.append(mlp(feats).amax(dim=0))
    return torch.stack(rows)


@pytest.mark.parametrize("dynamic", [True, False])
def test_edgeconv_layers_equal_per_image_literal_reference(dynamic):
    agg = _aggregation(dynamic=dynamic, k=3, layers=2)
    g = torch.Generator().manual_seed(4)
    nodes = torch.randn(4, 5, 6, generator=g)
    with torch.no_grad():
        batched = agg.graph_layers(nodes)
        for img in range(4):
            x0 = nodes[img]
            x1 = _edgeconv_reference(x0, agg.convs[0].nn, 3)
            if dynamic:
                x2 = _edgeconv_reference(x1, agg.convs[1].nn, 3)
            else:  # the graph of the input nodes, reused
                nbrs = brute_force_knn(x0[None], 3)[0]
                x2 = torch.stack([agg.convs[1].nn(torch.stack([torch.cat([x1[i], x1[j] - x1[i]]) for j in nb])).amax(0)
                                  for i, nb in enumerate(nbrs)])
            torch.testing.assert_close(batched[0][img], x1, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(batched[1][img], x2, rtol=1e-5, atol=1e-6)


def test_batched_output_equals_per_image_outputs_stacked():
    agg = _aggregation(k=3)
    g = torch.Generator().manual_seed(5)
    feats = torch.randn(5, 6, 4, 4, generator=g)
    maps = torch.rand(5, 5, 4, 4, generator=g)
    with torch.no_grad():
        batched = agg(AggregationInput(features=feats, maps=maps))
        single = [agg(AggregationInput(features=feats[i : i + 1], maps=maps[i : i + 1])) for i in range(5)]
    assert list(batched.descriptors) == ["bap", "graph"]
    for name in batched.descriptors:
        torch.testing.assert_close(batched.descriptors[name], torch.cat([s.descriptors[name] for s in single]),
                                   rtol=1e-5, atol=1e-6)


def test_graph_descriptor_layout_matches_gdfnet_readout():
    agg = _aggregation(k=2, layers=2)
    g = torch.Generator().manual_seed(6)
    feats = torch.randn(2, 6, 3, 3, generator=g)
    maps = torch.rand(2, 5, 3, 3, generator=g)
    with torch.no_grad():
        out = agg(AggregationInput(features=feats, maps=maps))
        nodes = (maps[:, :, None] * feats[:, None]).amax(dim=(-2, -1))  # GMP(F * A_m): (B, M, C)
        layers = agg.graph_layers(nodes)
        cat = torch.cat(layers, dim=-1).transpose(1, 2)  # (B, 2C, M): concat along channels
        flat = cat.reshape(2, -1)  # channel-major flatten
        ref = torch.sign(flat) * torch.sqrt(flat.abs() + 1e-12)
        ref = ref / ref.norm(dim=1, keepdim=True)
        parts = torch.einsum("bmhw,bchw->bmc", maps, feats) / 9
        bap = torch.sign(parts.reshape(2, -1)) * torch.sqrt(parts.reshape(2, -1).abs() + 1e-12)
        bap = bap / bap.norm(dim=1, keepdim=True)
    torch.testing.assert_close(out.descriptors["graph"], ref)
    torch.testing.assert_close(out.descriptors["bap"], bap)
    assert agg.descriptor_dims == {"bap": 5 * 6, "graph": 2 * 6 * 5}


def test_knn_graph_trains_end_to_end():
    spec = FeatureSpec(6, 8)
    agg = make_component("aggregation", "knn_graph", {"k": 3},
                         BuildContext(in_spec=spec, stages={"s": spec}, num_maps=4)).train()
    g = torch.Generator().manual_seed(7)
    feats = torch.randn(3, 6, 4, 4, generator=g, requires_grad=True)
    maps = torch.rand(3, 4, 4, 4, generator=g, requires_grad=True)
    out = agg(AggregationInput(features=feats, maps=maps))
    (out.descriptors["graph"] * torch.randn_like(out.descriptors["graph"])).sum().backward()
    assert feats.grad.abs().sum() > 0 and maps.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in agg.parameters() if p.ndim == 2)


def test_knn_graph_needs_maps_and_enough_nodes():
    from hashkit.errors import ContractError

    spec = FeatureSpec(6, 8)
    with pytest.raises(ContractError, match="attention maps"):
        make_component("aggregation", "knn_graph", {}, BuildContext(in_spec=spec, num_maps=0))
    with pytest.raises(ContractError, match="exceeds"):
        make_component("aggregation", "knn_graph", {"k": 5}, BuildContext(in_spec=spec, num_maps=3))


def test_knn_graph_warns_about_a_large_hash_layer():
    import warnings

    # GDF-Net's own size: 3 x 32 x 768 = 73,728 dims, 3.5 M hash weights at 48 bits: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_component("aggregation", "knn_graph", {}, BuildContext(in_spec=FeatureSpec(768, 16), num_maps=32,
                                                                    code_length=48))
    # ResNet-50 layer4 (C = 2048) with 32 maps: 196,608 dims, 9.4 M weights
    with pytest.warns(UserWarning, match="196,608 dims .* 9,437,184 weights"):
        make_component("aggregation", "knn_graph", {}, BuildContext(in_spec=FeatureSpec(2048, 32), num_maps=32,
                                                                    code_length=48))
