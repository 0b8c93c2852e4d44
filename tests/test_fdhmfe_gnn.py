"""FDH-MFE components: the multi-level GNN aggregation and background suppression."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hashkit.assemble import make_component
from hashkit.interfaces import AggregationInput, BuildContext, FeatureSpec
from hashkit.testing import check_component
from hashkit_plugins.aggregation.gnn_multilevel import MultilevelGNN

LAYERS = ["attention", "gat", "gcn", "edgeconv"]
GRAPHS = ["dense", "knn"]


def test_conformance():
    check_component("aggregation", "gnn_multilevel")
    check_component("attention", "background_suppression")


@settings(max_examples=12, deadline=None)
@given(layer=st.sampled_from(LAYERS), graph=st.sampled_from(GRAPHS), b=st.integers(1, 3), n=st.integers(2, 9),
       k=st.integers(1, 5), seed=st.integers(0, 10_000), train=st.booleans())
def test_gnn_is_permutation_equivariant(layer, graph, b, n, k, seed, train):
    torch.manual_seed(seed)
    gnn = MultilevelGNN(dim=6, num_layers=2, layer=layer, graph=graph, k=k, heads=2).double().train(train)
    x = torch.randn(b, n, 6, dtype=torch.float64)
    perm = torch.randperm(n)
    torch.testing.assert_close(gnn(x[:, perm]), gnn(x)[:, perm], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("graph", GRAPHS)
def test_batch_equals_images_one_by_one_and_no_loop_over_images(layer, graph):
    torch.manual_seed(0)
    gnn = MultilevelGNN(dim=8, num_layers=2, layer=layer, graph=graph, k=3, heads=1).double().eval()
    x = torch.randn(5, 7, 8, dtype=torch.float64)
    calls = []
    for lay in gnn.layers:
        lay.register_forward_hook(lambda *a: calls.append(1))
    batched = gnn(x)
    assert len(calls) == 2, "each layer runs once per batch, not once per image"
    for i in range(5):
        torch.testing.assert_close(batched[i : i + 1], gnn(x[i : i + 1]), rtol=1e-9, atol=1e-9)


def test_knn_graph_limits_messages_to_neighbours():
    """With k = 1 (self only) every node only sees itself: attention gives LN(h + GELU(W_v h))."""
    torch.manual_seed(0)
    gnn = MultilevelGNN(dim=6, num_layers=1, layer="attention", graph="knn", k=1, heads=1).double()
    h = torch.randn(2, 5, 6, dtype=torch.float64)
    lay, norm = gnn.layers[0], gnn.norms[0]
    torch.testing.assert_close(gnn(h), norm(h + torch.nn.functional.gelu(lay.v(h))))
    dense = MultilevelGNN(dim=6, num_layers=1, layer="attention", graph="dense", k=1, heads=1).double()
    dense.load_state_dict(gnn.state_dict())
    assert not torch.allclose(dense(h), gnn(h))


def _ctx_inputs(b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    stages = {"s2": FeatureSpec(8, 4), "s3": FeatureSpec(16, 8), "s4": FeatureSpec(32, 16)}
    x = {"s2": torch.randn(b, 8, 16, 16, generator=g), "s3": torch.randn(b, 16, 8, 8, generator=g),
         "s4": torch.rand(b, 32, 4, 4, generator=g)}
    return stages, x


def test_suppression_mask_reaches_every_stage_and_node_layouts():
    stages, x = _ctx_inputs()
    att = make_component("attention", "background_suppression", {"epsilon": 0.3}, BuildContext(in_spec=stages["s4"]))
    out = att(x["s4"])
    # literal reference of the mask: channel sum above its spatial mean
    for b in range(2):
        a = [[float(x["s4"][b, :, i, j].sum()) for j in range(4)] for i in range(4)]
        mean = sum(map(sum, a)) / 16
        for i in range(4):
            for j in range(4):
                s = 1.0 if a[i][j] > mean else 0.3
                assert out.maps[b, 0, i, j].item() == pytest.approx(s)
                torch.testing.assert_close(out.features[b, :, i, j], x["s4"][b, :, i, j] * s)
    ctx = BuildContext(in_spec=stages["s4"], stages=stages, num_maps=1)
    agg = make_component("aggregation", "gnn_multilevel", {"dim": 8}, ctx)
    inp = AggregationInput(features=out.features, maps=out.maps, stages=x)
    maps = agg.stage_maps(inp)
    for name, m in zip(("s2", "s3"), maps[:2]):
        f = m.shape[-1] // 4
        for i in range(m.shape[-1]):
            for j in range(m.shape[-1]):
                torch.testing.assert_close(m[:, :, i, j], x[name][:, :, i, j] * out.maps[:, 0, i // f, j // f, None])
    assert maps[2] is out.features
    res = agg(inp)
    assert res.descriptors["global"].shape == (2, 16) and res.extras["nodes"].shape == (2, 16 + 4 + 1, 8)
    stage = make_component("aggregation", "gnn_multilevel", {"dim": 8, "nodes": "stage", "stage_hidden": 4,
                                                             "layer": "gat", "graph": "knn", "k": 2}, ctx)
    assert stage(inp).extras["nodes"].shape == (2, 3, 8)
    # without attention maps the stages are used as they are
    plain = make_component("aggregation", "gnn_multilevel", {"dim": 8}, BuildContext(in_spec=stages["s4"], stages=stages))
    assert plain.stage_maps(AggregationInput(features=x["s4"], stages=x))[0] is x["s2"]


def test_bad_configs_are_contract_errors():
    from hashkit.errors import ContractError

    stages, _ = _ctx_inputs()
    ctx = BuildContext(in_spec=stages["s4"], stages=stages, num_maps=1)
    with pytest.raises(ContractError, match="one grid size per stage"):
        make_component("aggregation", "gnn_multilevel", {"grids": [2, 1]}, ctx)
    with pytest.raises(ContractError, match="not tapped"):
        make_component("aggregation", "gnn_multilevel", {"stages": ["s9"], "grids": [1]}, ctx)
    with pytest.raises(ContractError, match="mask_map"):
        make_component("aggregation", "gnn_multilevel", {"mask_map": 2}, ctx)


def test_whole_model_trains_end_to_end():
    from hashkit.assemble import build_losses, build_model, build_ref
    from hashkit.interfaces import LossInputs
    from hashkit.recipe.load import load_recipe

    recipe = {
        "name": "t", "code_lengths": [12],
        "model": {"taps": ["stage2", "stage3", "stage4"],
                  "backbone": {"name": "tiny_cnn", "width": 4},
                  "attention": [{"name": "background_suppression"}],
                  "aggregation": {"name": "gnn_multilevel", "dim": 8, "grids": [2, 2, 1], "layer": "gcn"},
                  "hash_head": {"name": "linear", "hidden": 16}},
        "losses": [{"name": "hhf"}, {"name": "triplet", "weight": 1.0}],
        "protocol": {"name": "pointwise"},
    }
    r = load_recipe(recipe)
    model = build_model(r, 12, 3)
    losses = build_losses(r, model, build_ref(r.protocol, BuildContext()), 12, 3)
    out = model(torch.randn(6, 3, 32, 32))
    labels = torch.nn.functional.one_hot(torch.arange(6) % 3, 3).float()
    res = losses(LossInputs(codes=out.codes, logits=out.logits, labels=labels, extras=out.extras))
    res.value.backward()
    first = model.backbone.stages["stage2"][0][0].weight
    assert first.grad is not None and first.grad.abs().sum() > 0
    assert losses.losses[0].proxies.grad.abs().sum() > 0
    names = [n for n, _ in losses.named_parameters()]
    assert names == ["losses.0.proxies"]


def _fg_bg_model(background_view=True):
    from hashkit.assemble import build_losses, build_model, build_ref
    from hashkit.recipe.load import load_recipe

    r = load_recipe("recipes/fdhmfe-demo.toml", {"model.attention": [
        {"name": "background_suppression", "background_view": background_view}],
        "losses[1].mining": "fg_bg", "model.backbone.width": 4})
    torch.manual_seed(0)
    model = build_model(r, 12, 4)
    return model, build_losses(r, model, build_ref(r.protocol, BuildContext()), 12, 4)


def test_background_view_is_the_background_through_the_same_network():
    from hashkit.interfaces import AggregationInput

    model, _ = _fg_bg_model()
    x = torch.randn(6, 3, 32, 32)
    out = model(x)
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    assert out.extras["background.codes"].shape == (6, 12)
    # literal: backbone stages, C5 * (1 - M) and mask 1 - M into the aggregation (which masks the other stages),
    # then the head, all in training mode (batch statistics)
    stages = model.backbone(x, model.taps)
    m = model.attention[0](stages["stage4"]).extras["foreground_mask"]
    agg = model.aggregation(AggregationInput(features=stages["stage4"] * (1 - m), maps=1 - m, stages=stages, image=x))
    torch.testing.assert_close(out.extras["background.codes"], model.hash_head(agg.descriptors).codes)
    assert not torch.allclose(out.extras["background.codes"], out.codes)
    # the view does not enter the BatchNorm running statistics, and evaluation makes no view
    plain, _ = _fg_bg_model(background_view=False)
    plain(x)
    for name, b in plain.named_buffers():
        if "running" in name or "num_batches" in name:
            torch.testing.assert_close(buffers[name], b, msg=name)
    assert "background.codes" not in model.eval()(x).extras


def test_fg_bg_triplet_sends_gradient_through_the_background_code():
    from hashkit.interfaces import LossInputs

    model, losses = _fg_bg_model()
    out = model(torch.randn(8, 3, 32, 32))
    background = out.extras["background.codes"]
    background.retain_grad()
    labels = torch.nn.functional.one_hot(torch.arange(8) % 4, 4).float()
    triplet = losses.losses[1]
    res = triplet(LossInputs(codes=out.codes, labels=labels, extras=out.extras))
    assert res.value > 0
    res.value.backward()
    assert background.grad is not None and background.grad.abs().sum() > 0
    # and from the background code on into the network (the aggregation sees the background stages)
    assert model.aggregation.nodes.parameters().__next__().grad.abs().sum() > 0
