"""The new modules and losses of A2-Net, ExchNet, AGMH and DAHNet against slow literal transcriptions of their
reference code (aassxun/DSH_Analysis @ 44271bc; ludics/fghash @ 077160f for ExchNet), values and gradients,
at tiny widths."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from hashkit.assemble import make_component
from hashkit.interfaces import BuildContext, EpochStart, FeatureSpec, LossInputs


def _grads(tensors):
    return [t.grad.clone() for t in tensors]


def _close(a, b, tol=1e-5):
    return all(torch.allclose(x, y, atol=tol, rtol=tol) for x, y in zip(a, b))


# -------------------------------------------------------------------------------------- part attention
@pytest.mark.parametrize("train", [True, False])
def test_part_attention_matches_reference(train):
    """models/A_2_net.py / exchnet.py: attention.layer4 = SEM's trunk, then Conv1x1 64 -> M, BN(M), ReLU, all M
    maps at once; the features pass unchanged. Written with functional ops on the module's weights."""
    att = make_component("attention", "part_attention", {"num_maps": "code_length"},
                         BuildContext(in_spec=FeatureSpec(64, 16), code_length=5)).train(train)
    ref = copy.deepcopy(att)
    x = torch.randn(2, 64, 6, 6, requires_grad=True)
    xr = x.detach().clone().requires_grad_()
    out = att(x)
    conv, bn = ref.head[0], ref.head[1]
    lit = F.relu(F.batch_norm(F.conv2d(ref.trunk(xr), conv.weight), bn.running_mean, bn.running_var, bn.weight,
                              bn.bias, training=train, momentum=0.1, eps=1e-5))
    assert out.features is x and out.maps.shape == (2, 5, 6, 6) and att.map_names[-1] == "part5"
    assert torch.allclose(out.maps, lit, atol=1e-5)
    r = torch.randn_like(lit)
    (out.maps * r).sum().backward()
    (lit * r).sum().backward()
    assert torch.allclose(x.grad, xr.grad, atol=1e-5)
    assert _close([p.grad for p in att.parameters()], [p.grad for p in ref.parameters()], 1e-4)
    skip = "head.1.num_batches_tracked"  # F.batch_norm leaves the counter alone
    assert _close([b.float() for n, b in att.named_buffers() if n != skip],
                  [b.float() for n, b in ref.named_buffers() if n != skip])
    head_params = sum(p.numel() for p in att.head.parameters())
    assert conv.bias is None and head_params == (64 // 16) * 5 + 2 * 5  # conv C/16 -> M without bias, BN(M)


# ------------------------------------------------------------------------------------------ FESM
def reference_fesm_call(mod, fm, k=2):
    """One FESM call as models/DAHNET.py writes it (split, per-stripe conv, pooled softmax, repeat, loop)."""
    b, c, w, h = fm.shape
    fmw_pool = torch.cat([F.adaptive_avg_pool2d(mod.stripconv(s), (1, 1)) for s in torch.split(fm, w // k, dim=2)], 2)
    fmh_pool = torch.cat([F.adaptive_avg_pool2d(mod.stripconv_h(s), (1, 1)) for s in torch.split(fm, h // k, dim=3)], 3)
    fmw = torch.repeat_interleave(torch.softmax(fmw_pool, dim=2), w // k, dim=2)
    fmh = torch.repeat_interleave(torch.softmax(fmh_pool, dim=3), w // k, dim=3)
    final = fmw * fmh
    boost = fm + 0.5 * (fm * final)
    masks = []
    for index in range(b):
        peak = torch.max(final[index])
        masks.append(torch.clamp((final[index] < peak * 0.95).float(), min=0.5))
    return boost, fm * torch.stack(masks)


@pytest.mark.parametrize("train", [True, False])
def test_fesm_matches_reference_values_gradients_and_bn_updates(train):
    torch.manual_seed(0)
    mine = make_component("attention", "fesm", {}, BuildContext(in_spec=FeatureSpec(16)))
    ref = copy.deepcopy(mine)
    mine.train(train), ref.train(train)
    x = torch.randn(3, 16, 6, 6, requires_grad=True)
    xr = x.detach().clone().requires_grad_()
    weights = torch.randn(3, 3, 16, 6, 6)
    maps = mine(x).maps
    E = [x * maps[:, k : k + 1] for k in range(3)]
    e1, s1 = reference_fesm_call(ref, xr)
    e2, s2 = reference_fesm_call(ref, s1)
    e3, _ = reference_fesm_call(ref, s2)
    for k, (a, b) in enumerate(zip(E, (e1, e2, e3))):
        assert torch.allclose(a, b, atol=1e-6), k
    sum((e * weights[k]).sum() for k, e in enumerate(E)).backward()
    sum((e * weights[k]).sum() for k, e in enumerate((e1, e2, e3))).backward()
    assert torch.allclose(x.grad, xr.grad, atol=1e-5)
    assert _close([p.grad for p in mine.parameters()], [p.grad for p in ref.parameters()])
    for a, b in zip(mine.buffers(), ref.buffers()):  # per-stripe BN statistics, 6 updates per branch in train mode
        assert torch.allclose(a.float(), b.float(), atol=1e-6)
    if train:
        assert int(mine.stripconv[1].num_batches_tracked) == 6


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([2, 4, 8]))
def test_fesm_block_map_and_mask_properties(seed, side):
    torch.manual_seed(seed)
    fesm = make_component("attention", "fesm", {}, BuildContext(in_spec=FeatureSpec(8))).eval()
    x = torch.randn(2, 8, side, side)
    with torch.no_grad():
        a = fesm.block_map(x)
        half = side // 2
        blocks = a[:, 0, ::half, ::half]  # one value per 2x2 block
        assert torch.allclose(blocks.sum(dim=(1, 2)), torch.ones(2), atol=1e-6)
        mask = fesm.suppression_mask(a)
        assert set(mask.unique().tolist()) <= {0.5, 1.0} and (mask == 0.5).any(dim=(1, 2, 3)).all()
        maps = fesm(x).maps
        assert (maps >= 0).all() and (maps[:, 0] >= 1).all()  # stage 1: 1 + A/2, nothing suppressed yet


def test_fesm_shape_rules():
    from hashkit.errors import ContractError

    fesm = make_component("attention", "fesm", {}, BuildContext(in_spec=FeatureSpec(8)))
    with pytest.raises(ContractError, match="general"):
        fesm(torch.randn(1, 8, 7, 7))
    general = make_component("attention", "fesm", {"shape": "general"}, BuildContext(in_spec=FeatureSpec(8)))
    assert general(torch.randn(1, 8, 7, 5)).maps.shape == (1, 3, 7, 5)


# ------------------------------------------------------------------------------------------- CFM
def reference_cfm(mod, x, drop=lambda t: t):
    """CFM -> ChannelMixerConv(CoordAtt, ConvMlp) in the reference's token layout, 7x7 hard-coded."""
    BB, CC, HH, WW = x.shape
    patches = x.permute(0, 2, 3, 1).reshape(BB, -1, CC)
    residual = patches
    side = int(math.sqrt(patches.shape[1]))
    t = patches.permute(0, 2, 1).reshape(BB, CC, side, side)
    ca = mod.channel_att
    y = F.adaptive_avg_pool2d(t, (None, 1)) * F.adaptive_avg_pool2d(t, (1, None))
    y = ca.bn1(ca.conv1(y))
    y = y * (F.relu6(y + 3) / 6)
    y = t * ca.conv2(y).sigmoid()
    gated = residual + y.permute(0, 2, 3, 1).reshape(BB, -1, CC)
    m = mod.mlp
    z = gated.permute(0, 2, 1).reshape(BB, CC, 7, 7)
    z = drop(m.conv1(z))
    z = m.proj(z) + z
    z = m.proj_bn(m.proj_act(z))
    z = drop(m.conv2(z).flatten(2).permute(0, 2, 1))
    return z.permute(0, 2, 1).reshape(BB, CC, HH, WW)


@pytest.mark.parametrize("train", [True, False])
def test_cfm_matches_reference(train):
    torch.manual_seed(1)
    mine = make_component("channel_interaction", "cfm", {"dropout": 0.0}, BuildContext(in_spec=FeatureSpec(32)))
    ref = copy.deepcopy(mine)
    mine.train(train), ref.train(train)
    x = torch.randn(2, 32, 7, 7, requires_grad=True)
    xr = x.detach().clone().requires_grad_()
    w = torch.randn(2, 32, 7, 7)
    a, b = mine(x), reference_cfm(ref, xr)
    assert torch.allclose(a, b, atol=1e-5)
    (a * w).sum().backward()
    (b * w).sum().backward()
    assert torch.allclose(x.grad, xr.grad, atol=1e-5)
    assert _close([p.grad for p in mine.parameters()], [p.grad for p in ref.parameters()], 1e-4)
    res = make_component("channel_interaction", "cfm", {"residual": True}, BuildContext(in_spec=FeatureSpec(32)))
    res.load_state_dict(mine.state_dict())
    assert torch.allclose(res.eval()(x), x + mine.eval()(x), atol=1e-6)


def test_cfm_dropout_in_train_mode_and_size_rule():
    from hashkit.errors import ContractError

    torch.manual_seed(2)
    cfm = make_component("channel_interaction", "cfm", {}, BuildContext(in_spec=FeatureSpec(32)))
    x = torch.randn(2, 32, 7, 7)
    ref = copy.deepcopy(cfm).train()
    torch.manual_seed(5)
    a = cfm.train()(x)
    torch.manual_seed(5)
    b = reference_cfm(ref, x, drop=lambda t: F.dropout(t, 0.1, training=True))
    assert torch.allclose(a, b, atol=1e-5)  # same dropout draws in the same order
    with pytest.raises(ContractError, match="dynamic"):
        cfm(torch.randn(1, 32, 4, 4))
    dyn = make_component("channel_interaction", "cfm", {"size": "dynamic"}, BuildContext(in_spec=FeatureSpec(32)))
    assert dyn(torch.randn(1, 32, 4, 5)).shape == (1, 32, 4, 5)


# ------------------------------------------------------------------------------------------- MCM
def reference_mcm_exchange(x1, x2, x3):
    def mcm(f1, f2):
        similarity = torch.cosine_similarity(f1, f2, dim=1)
        b, c, h, w = f1.size()
        s = torch.softmax(similarity.view(b, 1, h * w), dim=2)
        t = torch.softmax(1.0 - s, dim=2)
        return f2 * s.view(b, 1, h, w), f1 * t.view(b, 1, h, w)

    f2_from_f1, f1_from_f2 = mcm(x2, x1)
    f3_from_f2, f2_from_f3 = mcm(x3, x2)
    return x1 + f1_from_f2, x2 + 0.5 * (f2_from_f1 + f2_from_f3), x3 + f3_from_f2


def test_stage_exchange_matches_reference_mcm():
    from hashkit_plugins.aggregation.stage_exchange import stage_exchange

    torch.manual_seed(3)
    xs = [torch.randn(2, 6, 3, 3, requires_grad=True) for _ in range(3)]
    xr = [x.detach().clone().requires_grad_() for x in xs]
    mine, ref = stage_exchange(xs), reference_mcm_exchange(*xr)
    for a, b in zip(mine, ref):
        assert torch.allclose(a, b, atol=1e-7)
    w = torch.randn(3, 2, 6, 3, 3)
    sum((y * w[k]).sum() for k, y in enumerate(mine)).backward()
    sum((y * w[k]).sum() for k, y in enumerate(ref)).backward()
    assert _close(_grads(xs), _grads(xr), 1e-6)
    scaled = stage_exchange([x.detach() for x in xs], scale=9.0)
    assert torch.allclose(scaled[0], xs[0] + (ref[0] - xr[0]) * 9.0, atol=1e-5)  # mcm_scale = "positions"


# ------------------------------------------------------------------------------------------- SIEA
def reference_siea(mod, x):
    """SIExtAttn.forward of models/agmh.py, with its module lists."""
    idn = x
    x = mod.conv1(x)
    b, c, h, w = x.size()
    x = x.view(b, c, h * w)
    query_list = [mod.qry_conv[n](x) for n in range(len(mod.qry_conv))]
    alt_query = query_list[0]
    for n in range(len(mod.qry_conv) - 1):
        alt_query = mod.alt_conv[n](torch.cat([alt_query, query_list[n + 1]], dim=1))
    attn = F.softmax(alt_query, dim=-1)
    attn = attn / (1e-9 + attn.sum(dim=1, keepdim=True))
    x = mod.linear(attn).view(b, c, h, w)
    return F.relu(mod.conv2(x) + idn)


def test_attribute_grouping_and_siea_match_reference():
    torch.manual_seed(4)
    agg = make_component("aggregation", "attribute_grouping", {"slots": 8, "descriptors": 3},
                         BuildContext(in_spec=FeatureSpec(32)))
    ref = copy.deepcopy(agg)
    x = torch.randn(2, 32, 5, 5, requires_grad=True)
    xr = x.detach().clone().requires_grad_()
    out = agg.train()(__import__("hashkit").interfaces.AggregationInput(features=x))
    groups = [ref.descriptors[k](xr) for k in range(3)]
    vecs = [F.adaptive_avg_pool2d(g, (1, 1)).flatten(1) for g in groups]
    maps = [reference_siea(ref.siea[k], g).max(dim=1)[0] for k, g in enumerate(groups)]
    assert list(out.descriptors) == ["attr1", "attr2", "attr3"]
    assert all(torch.allclose(out.descriptors[f"attr{k + 1}"], vecs[k], atol=1e-6) for k in range(3))
    assert torch.allclose(out.extras["attribute_maps"], torch.stack(maps, 1), atol=1e-5)
    w = torch.randn(2, 3, 5, 5)
    (out.extras["attribute_maps"] * w).sum().backward()
    (torch.stack(maps, 1) * w).sum().backward()
    assert torch.allclose(x.grad, xr.grad, atol=1e-5)
    assert _close([p.grad for p in agg.siea.parameters()], [p.grad for p in ref.siea.parameters()], 1e-4)
    with torch.no_grad():
        assert "attribute_maps" not in agg.eval()(__import__("hashkit").interfaces.AggregationInput(features=x)).extras


def test_siea_init_follows_the_reference():
    torch.manual_seed(0)
    agg = make_component("aggregation", "attribute_grouping", {}, BuildContext(in_spec=FeatureSpec(2048)))
    siea = agg.siea[0]
    assert abs(siea.qry_conv[0].weight.std().item() - 0.125) < 0.005
    assert abs(siea.linear.weight.std().item() - 0.0625) < 0.003
    assert abs(siea.conv1.weight.std().item() - math.sqrt(2 / 512)) < 0.003
    assert torch.equal(siea.conv2[1].weight, torch.ones(512))


# ----------------------------------------------------------------------------------------- losses
def _inputs(**kw):
    return LossInputs(**kw)


def test_reconstruction_and_decorrelation_match_the_a2net_loss():
    g = torch.Generator().manual_seed(5)
    h = torch.tanh(torch.randn(5, 6, generator=g)).requires_grad_()
    W = torch.randn(6, 20, generator=g)
    all_f = torch.randn(5, 20, generator=g).requires_grad_()
    dret = h @ W
    rec = make_component("loss", "reconstruction", {"from_round": 2})
    dec = make_component("loss", "bit_decorrelation", {"form": "a2net", "batch_size": 16, "from_round": 2})
    for loss in (rec, dec):  # the trainer's call before the first epoch of round 2 (0-based)
        loss.begin_epoch(EpochStart.at(2, 0, epochs_per_round=3, num_rounds=4))
    value = rec(_inputs(codes=h, descriptor=all_f, extras={"reconstruction": dret})).value + \
        dec(_inputs(codes=h)).value
    # literal: A_2_net_Loss with batch_size 16 (the configured size, also for this 5-item batch)
    lit_rec = sum((dret[i, j] - all_f[i, j]) ** 2 for i in range(5) for j in range(20)) / 100
    gram = h.t() @ h
    lit_dec = sum((gram[a, b] - (16.0 if a == b else 0.0)) ** 2 for a in range(6) for b in range(6)) / 36 / 16 / 6
    assert torch.allclose(value, lit_rec + lit_dec, rtol=1e-5)
    gm = torch.autograd.grad(value, (h, all_f), retain_graph=True)
    gl = torch.autograd.grad(lit_rec + lit_dec, (h, all_f))
    assert _close(gm, gl)
    state = {k: v.clone() for k, v in rec.state_dict().items()}
    assert int(state["current_round"]) == 2  # checkpointed: a run resumed mid-round keeps the term on
    for loss in (rec, dec):
        loss.begin_epoch(EpochStart.at(1, 2, epochs_per_round=3, num_rounds=4))
    assert rec(_inputs(codes=h, descriptor=all_f, extras={"reconstruction": dret})).value == 0
    assert dec(_inputs(codes=h)).value == 0
    rec.load_state_dict(state)
    assert rec(_inputs(codes=h, descriptor=all_f, extras={"reconstruction": dret})).value > 0
    plain = make_component("loss", "bit_decorrelation", {"form": "a2net"})
    assert "current_round" not in plain.state_dict()  # no schedule, no state


def reference_hellinger_losses(sp_v, ch_v, t=0.4):
    """SP_Loss and CH_Loss of models/exchnet_loss.py (pair loops), each divided by the batch size."""
    def mean_distance(v):
        total, cnt = 0, 0
        for i in range(v.shape[1] - 1):
            for j in range(i + 1, v.shape[1]):
                total = total + torch.norm(torch.sqrt(v[:, i, :]) - torch.sqrt(v[:, j, :]), dim=1)
                cnt += 1
        return total / math.sqrt(2) / cnt

    b = sp_v.shape[0]
    return (1 - mean_distance(sp_v)).sum() / b, F.relu(t - mean_distance(ch_v)).sum() / b


def test_part_diversity_matches_sp_and_ch():
    g = torch.Generator().manual_seed(6)
    sp = torch.randn(4, 4, 9, generator=g).softmax(2).requires_grad_()
    ch = (torch.randn(4, 4, 12, generator=g) * 0.1).softmax(2).requires_grad_()
    spatial = make_component("loss", "part_diversity", {"distributions": "part_spatial", "margin": 1.0})
    channel = make_component("loss", "part_diversity", {"distributions": "part_channel", "margin": 0.4})
    extras = {"part_spatial": sp, "part_channel": ch}
    mine = spatial(_inputs(extras=extras)).value + channel(_inputs(extras=extras)).value
    ref_sp, ref_ch = reference_hellinger_losses(sp, ch)
    assert ref_ch > 0  # the hinge is active for these near-uniform channel distributions
    assert torch.allclose(mine, ref_sp + ref_ch, rtol=1e-6)
    assert _close(torch.autograd.grad(mine, (sp, ch), retain_graph=True), torch.autograd.grad(ref_sp + ref_ch, (sp, ch)))


def test_part_alignment_and_attention_dispersion_match_reference():
    g = torch.Generator().manual_seed(7)
    f = torch.randn(3, 4, 8, generator=g).requires_grad_()
    anchors = torch.randn(3, 4, 8, generator=g)
    align = make_component("loss", "part_alignment")
    value = align(_inputs(extras={"part_features": f, "part_anchors": anchors})).value
    ref = torch.norm(f - anchors) / 3
    assert torch.allclose(value, ref)
    assert _close(torch.autograd.grad(value, f, retain_graph=True), torch.autograd.grad(ref, f))
    assert align(_inputs(codes=torch.zeros(3, 2), extras={"part_features": f})).value == 0  # before the anchors

    attn = [torch.randn(2, 5, 3, 4, generator=g).requires_grad_() for _ in range(4)]
    maps = torch.stack([a.max(dim=1)[0] for a in attn], 1)
    adl = make_component("loss", "attention_dispersion")(_inputs(extras={"attribute_maps": maps})).value
    # literal Feat_Loss of AGMH.py
    sm = [a.max(dim=1)[0].reshape(2, 12).softmax(dim=1) for a in attn]
    total = sum((sm[i] * sm[j]).sum() for i in range(4) for j in range(i + 1, 4))
    lit = total / (6 * 2)
    assert torch.allclose(adl, lit)
    assert _close(torch.autograd.grad(adl, attn, retain_graph=True), torch.autograd.grad(lit, attn))


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 6), st.integers(2, 30))
def test_attention_dispersion_bounds(k, hw):
    loss = make_component("loss", "attention_dispersion")
    uniform = loss(_inputs(extras={"attribute_maps": torch.zeros(2, k, 1, hw)})).value
    assert torch.allclose(uniform, torch.tensor(1.0 / hw))
    if hw >= k:  # disjoint peaks
        peaks = torch.full((2, k, 1, hw), -1e4)
        for i in range(k):
            peaks[:, i, 0, i] = 1e4
        assert loss(_inputs(extras={"attribute_maps": peaks})).value < 1e-6


def test_cross_entropy_with_local_classifiers_matches_dahnet():
    g = torch.Generator().manual_seed(8)
    z = torch.randn(4, 5, generator=g).requires_grad_()
    zl = torch.randn(4, 3, 5, generator=g).requires_grad_()
    labels = F.one_hot(torch.tensor([0, 3, 1, 3]), 5).double()  # float64 one-hot rows, as the trainer passes them
    loss = make_component("loss", "cross_entropy", {"global_weight": 0.5, "local_weight": 1 / 6})
    res = loss(_inputs(class_logits=z, labels=labels.float(), extras={"local_class_logits": zl}))
    ce = torch.nn.CrossEntropyLoss()
    ref = 0.5 * ce(z, labels.float()) + (ce(zl[:, 0], labels.float()) + ce(zl[:, 1], labels.float())
                                         + ce(zl[:, 2], labels.float())) / 6
    assert torch.allclose(res.value, ref, rtol=1e-6) and set(res.parts) == {"global", "local"}
    assert _close(torch.autograd.grad(res.value, (z, zl), retain_graph=True), torch.autograd.grad(ref, (z, zl)))
    from hashkit.errors import ContractError

    with pytest.raises(ContractError):
        make_component("loss", "cross_entropy", {"global_weight": 0.5})


# ------------------------------------------------------------------------------------- protocol anchors
def test_adsh_protocol_class_anchors():
    L, n = 6, 12
    labels = F.one_hot(torch.arange(n) % 3, 4).float()  # class 3 has no item
    proto = make_component("training_protocol", "adsh", {"num_samples": 8, "anchors_after": 2},
                           BuildContext(code_length=L, num_train=n))
    assert proto.provides == ("B", "S", "omega", "anchors") and proto.embedding_output == "descriptor"
    proto.setup(labels, torch.Generator().manual_seed(0))
    assert proto.embedding_request(1, torch.Generator()) is None
    wanted = proto.embedding_request(2, torch.Generator())
    assert torch.equal(wanted, torch.arange(n))
    emb = torch.randn(n, 10, generator=torch.Generator().manual_seed(1))
    proto.refresh_embeddings(wanted, emb)
    # literal: C[c] = sum of the class's features / count (adsh_exchnet.py), zeros for an empty class
    C = torch.zeros(4, 10)
    cnt = torch.zeros(4, 1)
    for i in range(n):
        C[labels[i].argmax()] += emb[i]
        cnt[labels[i].argmax()] += 1
    assert torch.allclose(proto.anchors, C / cnt.clamp_min(1), atol=1e-6) and proto.anchors[3].abs().sum() == 0
    order = proto.begin_round(2, torch.Generator().manual_seed(2))
    state = proto.batch_state(order[:5])
    assert torch.equal(state["anchors"], proto.anchors[labels[order[:5]].argmax(1)])
    other = make_component("training_protocol", "adsh", {"num_samples": 8, "anchors_after": 2},
                           BuildContext(code_length=L, num_train=n))
    other.setup(labels, torch.Generator().manual_seed(9))
    other.load_state_dict(proto.state_dict())
    assert torch.equal(other.anchors, proto.anchors)


def test_exchange_branches_exchange_matches_reference_and_only_in_training():
    """The exchange of models/exchnet.py: Bernoulli(0.5).sample([b, M, 1]) mask, f*mask + anchor*(1-mask)."""
    from hashkit_plugins.aggregation.refine_branches import stage_copy_example

    ex = stage_copy_example(2)
    agg = make_component("aggregation", "exchange_branches", {"stage": "stage4"}, ex.ctx).train()
    inp = ex.inputs[0]
    anchors = torch.randn(2, 96, generator=torch.Generator().manual_seed(3))
    inp.context = {"anchors": anchors}
    torch.manual_seed(11)
    out = agg(inp)
    torch.manual_seed(11)
    plain = agg.local_maps(inp).mean(dim=(3, 4))  # same BN batch statistics, same RNG position
    mask = torch.distributions.Bernoulli(0.5).sample([2, 2, 1])
    expected = plain * mask + anchors[:, :64].reshape(2, 2, 32) * (1 - mask)
    assert 0 < mask.sum() < 4
    assert torch.allclose(out.extras["part_features"], expected, atol=1e-6)
    assert torch.allclose(torch.cat([out.descriptors["local1"], out.descriptors["local2"]], 1), expected.flatten(1))
    assert torch.allclose(out.extras["part_channel"], plain.softmax(2), atol=1e-6)
    with torch.no_grad():
        evald = agg.eval()(inp)
    assert "part_anchors" not in evald.extras


@pytest.mark.parametrize("mode", ["feature", "batch_axis"])
def test_refine_branches_l2_normalize(mode):
    """A2-Net's normalisation options: per feature vector, or the MindSpore file's axis 0 (across the batch)."""
    from hashkit_plugins.aggregation.refine_branches import stage_copy_example

    ex = stage_copy_example(2, {"order": "local_first", "local_pass": "stacked"})
    torch.manual_seed(0)
    plain = make_component("aggregation", "refine_branches", ex.config, ex.ctx).eval()
    torch.manual_seed(0)
    normed = make_component("aggregation", "refine_branches", {**ex.config, "l2_normalize": mode}, ex.ctx).eval()
    with torch.no_grad():
        raw, out = plain(ex.inputs[0]).descriptors, normed(ex.inputs[0]).descriptors
    local = torch.stack([raw["local1"], raw["local2"]], 1)  # (B, K, C)
    g = raw["global"]
    if mode == "feature":
        exp_local = local / local.pow(2).sum(-1, keepdim=True).sqrt()
        exp_g = g / g.pow(2).sum(-1, keepdim=True).sqrt()
    else:
        exp_local = local / local.pow(2).sum(0, keepdim=True).sqrt()
        exp_g = g / g.pow(2).sum(0, keepdim=True).sqrt()
    assert torch.allclose(torch.stack([out["local1"], out["local2"]], 1), exp_local, atol=1e-6)
    assert torch.allclose(out["global"], exp_g, atol=1e-6)
    assert normed.eval_batch_dependent == (mode == "batch_axis") and not plain.eval_batch_dependent
