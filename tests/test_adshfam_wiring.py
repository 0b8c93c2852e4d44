"""Each method's composed model (demo recipes: tiny widths) against its reference ``forward`` written out
literally with the model's own submodules (aassxun/DSH_Analysis @ 44271bc: models/A_2_net.py, models/exchnet.py,
models/agmh.py, models/DAHNET.py): codes, extras and gradients, train mode included."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import hashkit
from hashkit.assemble import build_model
from test_adshfam_modules import reference_fesm_call

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def _demo(name: str, **over):
    torch.manual_seed(0)
    return build_model(hashkit.load_recipe(RECIPES / f"{name}-demo.toml", over), 12, num_classes=5)


def _params_close(a, b, tol=1e-4):
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb
        if pa.grad is None or pb.grad is None:
            assert pa.grad is None and pb.grad is None, na
        else:
            assert torch.allclose(pa.grad, pb.grad, atol=tol, rtol=tol), na


def _local_stack(model, out):
    """A2-Net / ExchNet local branch: repeat maps and features, view as (B*M, C, h, w), one refine_local pass."""
    b, c, h, w = out.shape
    att_map = model.attention[0].head(model.attention[0].trunk(out))
    m = att_map.shape[1]
    att_map_rep = att_map.unsqueeze(2).repeat(1, 1, c, 1, 1)
    out_rep = out.unsqueeze(1).repeat(1, m, 1, 1, 1)
    local_f = model.aggregation.refine_local.stage4(att_map_rep.mul(out_rep).view(b * m, c, h, w))
    _, c2, h2, w2 = local_f.shape
    return local_f.view(b, m, c2, h2, w2), local_f.mean(dim=(2, 3)).view(b, m, c2)


def test_a2net_forward_matches_reference():
    model = _demo("a2net").train()
    ref = copy.deepcopy(model)
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    res = model(x)
    out = ref.backbone(x, ["stage3"])["stage3"]
    global_f = ref.aggregation.refine_global.stage4(out).mean(dim=(2, 3))
    _, avg_local_f = _local_stack(ref, out)
    all_f = torch.cat([avg_local_f.view(3, -1), global_f], dim=1)
    W = ref.hash_head.hash[0].weight
    ret = torch.tanh(F.linear(all_f, W))
    dret = F.linear(ret, W.t())
    assert torch.allclose(res.codes, ret, atol=1e-5) and torch.allclose(res.descriptor, all_f, atol=1e-5)
    assert torch.allclose(res.extras["reconstruction"], dret, atol=1e-4)
    r = torch.randn_like(dret)
    ((res.codes ** 2).sum() + (res.extras["reconstruction"] * r).sum()).backward()
    ((ret ** 2).sum() + (dret * r).sum()).backward()
    _params_close(model, ref)
    for a, b in zip(model.buffers(), ref.buffers()):  # one running-statistics update of the stacked local pass
        assert torch.allclose(a.float(), b.float(), atol=1e-5)


def test_exchnet_forward_matches_reference():
    model = _demo("exchnet").eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        res = model(x)
        out = model.backbone(x, ["stage3"])["stage3"]
        global_f = model.aggregation.refine_global(out)
        local_f, avg_local_f = _local_stack(model, out)
        sp_v = F.softmax(local_f.mean(dim=2).view(2, 4, -1), dim=2)
        ch_v = F.softmax(avg_local_f, dim=2)
        ret = model.hash_head.hash(torch.cat([avg_local_f.view(2, -1), global_f], dim=1)).tanh()
    assert torch.allclose(res.codes, ret, atol=1e-5)
    assert torch.allclose(res.extras["part_spatial"], sp_v, atol=1e-6)
    assert torch.allclose(res.extras["part_channel"], ch_v, atol=1e-6)
    assert torch.allclose(res.extras["part_features"], avg_local_f, atol=1e-5)


def test_agmh_forward_matches_reference():
    model = _demo("agmh").train()
    ref = copy.deepcopy(model)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    res = model(x)
    out = ref.backbone(x, ["stage3"])["stage3"]
    agg = ref.aggregation
    feat_group = [agg.descriptors[i](out) for i in range(6)]
    attn_group = [agg.siea[i](f) for i, f in enumerate(feat_group)]
    feat_vec = torch.cat([F.adaptive_avg_pool2d(f, (1, 1)).flatten(1) for f in feat_group], dim=1)
    ret = torch.tanh(F.linear(feat_vec, ref.hash_head.hash[0].weight))
    maps = torch.stack([a.max(dim=1)[0] for a in attn_group], dim=1)
    assert torch.allclose(res.codes, ret, atol=1e-5)
    assert torch.allclose(res.extras["attribute_maps"], maps, atol=1e-5)
    r = torch.randn_like(maps)
    ((res.codes ** 2).sum() + (res.extras["attribute_maps"] * r).sum()).backward()
    ((ret ** 2).sum() + (maps * r).sum()).backward()
    _params_close(model, ref)


@pytest.mark.parametrize("train", [True, False])
def test_dahnet_forward_matches_reference(train):
    model = _demo("dahnet").train(train)
    ref = copy.deepcopy(model)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    torch.manual_seed(7)  # the CFM's dropout draws, in the same order in both forwards
    res = model(x)
    torch.manual_seed(7)
    out = ref.backbone(x, ["stage3"])["stage3"]
    agg, head, fesm = ref.aggregation, ref.hash_head, ref.attention[0]
    global_f = agg.refine_global.stage4(out).mean(dim=(2, 3))
    boost1, suppress1 = reference_fesm_call(fesm, out)
    boost2, suppress2 = reference_fesm_call(fesm, suppress1)
    boost3, _ = reference_fesm_call(fesm, suppress2)
    local1, local2, local3 = agg.local_stem(boost1), agg.local_stem(boost2), agg.local_stem(boost3)

    def mcm(f1, f2):
        s = torch.softmax(torch.cosine_similarity(f1, f2, dim=1).flatten(1).unsqueeze(1), dim=2)
        t = torch.softmax(1.0 - s, dim=2)
        return f2 * s.view_as(f1[:, :1]), f1 * t.view_as(f1[:, :1])

    f2_from_f1, f1_from_f2 = mcm(local2, local1)
    f3_from_f2, f2_from_f3 = mcm(local3, local2)
    y = [local1 + f1_from_f2, local2 + 0.5 * (f2_from_f1 + f2_from_f3), local3 + f3_from_f2]
    g = [agg.refine_local.stage4(v).mean(dim=(2, 3)) for v in y]
    deep = torch.cat([F.linear(global_f, head.W_G)] + [F.linear(f, W) for f, W in zip(g, (head.W_L1, head.W_L2,
                                                                                           head.W_L3))], dim=1)
    ret = torch.tanh(deep)
    assert torch.allclose(res.codes, ret, atol=1e-5)
    assert torch.allclose(res.class_logits, head.cls(global_f), atol=1e-5)
    local_logits = torch.stack([head.cls_loc(f) for f in g], dim=1)
    assert torch.allclose(res.extras["local_class_logits"], local_logits, atol=1e-5)
    if train:
        r = torch.randn_like(local_logits)
        ((res.codes ** 2).sum() + (res.extras["local_class_logits"] * r).sum()).backward()
        ((ret ** 2).sum() + (local_logits * r).sum()).backward()
        _params_close(model, ref)
