"""SEMICON components against slow literal references written from the official code (aassxun/SEMICON @
885cbfe0: SEM, ICON, bit split, ADSH loss, similarity and DCC). Tiny widths; float64 references where the
comparison needs it."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hashkit.assemble import make_component
from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, FeatureSpec, LossInputs
from hashkit.testing import check_component

COMPONENTS = [
    ("backbone", "resnet18"), ("backbone", "resnet50"), ("attention", "sem"), ("channel_interaction", "icon"),
    ("aggregation", "refine_branches"), ("hash_head", "split_linear"), ("loss", "adsh"), ("training_protocol", "adsh"),
]


@pytest.mark.parametrize("kind,name", COMPONENTS)
def test_conformance(kind, name):
    check_component(kind, name)


# --------------------------------------------------------------------------------------------- SEM
def literal_multiplier(a: torch.Tensor, alpha: float) -> torch.Tensor:
    """The mask function step by step, float64 loops: softmax per image, batch-global unbiased std/mean, clamp, 2 - m."""
    b, _, h, w = a.shape
    a = a.double()
    p = torch.zeros(b, h * w, dtype=torch.float64)
    for i in range(b):
        vals = [float(a[i, 0].reshape(-1)[j]) for j in range(h * w)]
        top = max(vals)
        exps = [math.exp(v - top) for v in vals]
        total = sum(exps)
        for j in range(h * w):
            p[i, j] = exps[j] / total
    flat = [float(v) for v in p.reshape(-1)]
    mu = sum(flat) / len(flat)
    sigma = math.sqrt(sum((v - mu) ** 2 for v in flat) / (len(flat) - 1))
    m = torch.zeros(b, 1, h, w, dtype=torch.float64)
    for i in range(b):
        for j in range(h * w):
            m[i, 0, j // w, j % w] = min(max((p[i, j] - mu) / sigma**alpha + 1, 0.0), 2.0)
    return 2 - m


def _sem(**cfg):
    torch.manual_seed(0)
    return make_component("attention", "sem", cfg, BuildContext(in_spec=FeatureSpec(64, 16)))


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("alpha", [0.15, 0.3])
def test_sem_maps_equal_literal_cascade(train, alpha):
    sem = _sem(alpha=alpha).train(train)
    if not train:  # non-trivial running statistics
        for m in sem.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    x = torch.randn(3, 64, 5, 5, generator=torch.Generator().manual_seed(1))
    out = sem(x)
    assert torch.equal(out.features, x)
    with torch.no_grad():
        z = sem.trunk(x).double()
        a1 = sem.heads[0](z.float()).double()
        z = z * literal_multiplier(a1, alpha)
        a2 = sem.heads[1](z.float()).double()
        z = z * literal_multiplier(a2, alpha)
        a3 = sem.heads[2](z.float()).double()
    ref = torch.cat([a1, a2, a3], dim=1)
    assert out.maps.shape == (3, 3, 5, 5)
    assert (out.maps - ref).abs().max().item() <= 1e-5
    assert (out.maps >= 0).all()


def test_sem_trunk_widths_follow_input_channels():
    sem = make_component("attention", "sem", {}, BuildContext(in_spec=FeatureSpec(1024, 16)))
    shapes = {k: tuple(v.shape) for k, v in sem.state_dict().items()}
    assert shapes["trunk.0.conv1.weight"] == (256, 1024, 1, 1)
    assert shapes["trunk.1.0.weight"] == (256, 1024, 1, 1)
    assert shapes["trunk.2.conv2.weight"] == (64, 64, 3, 3)
    assert shapes["trunk.3.0.weight"] == (64, 256, 1, 1)
    assert shapes["trunk.4.conv1.weight"] == (16, 64, 1, 1)
    assert shapes["heads.2.0.weight"] == (1, 64, 1, 1)
    assert sum(p.numel() for p in sem.parameters()) == 1_471_494  # the official SEM module's parameter count
    with pytest.raises(ContractError):
        make_component("attention", "sem", {}, BuildContext(in_spec=FeatureSpec(96, 16)))


def test_sem_mask_has_no_gradient_and_maps_do():
    sem = _sem().train()
    x = torch.randn(2, 64, 4, 4, requires_grad=True)
    out = sem(x)
    out.maps.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    from hashkit_plugins.attention.sem import sem_multiplier

    s, _ = sem_multiplier(torch.randn(2, 1, 4, 4, requires_grad=True), 0.15)
    assert not s.requires_grad


def test_sem_all_zero_map_raises_or_is_guarded():
    from hashkit_plugins.attention.sem import sem_multiplier

    zero = torch.zeros(2, 1, 4, 4)
    s, std = sem_multiplier(zero, 0.15)
    assert std.item() == 0.0 and torch.isnan(s).all()  # the official std_mean behaviour
    s, _ = sem_multiplier(zero, 0.15, sigma_eps=1e-12)
    assert torch.allclose(s, torch.ones_like(s))
    sem = _sem().eval()
    with torch.no_grad():
        sem.heads[0][1].bias.fill_(-1e3)  # ReLU kills stage 1 everywhere
    with pytest.raises(ContractError, match="stage-1 mask"):
        sem(torch.randn(2, 64, 4, 4))
    guarded = _sem(sigma_eps=1e-12).eval()
    guarded.load_state_dict(sem.state_dict())
    assert torch.isfinite(guarded(torch.randn(2, 64, 4, 4)).maps).all()


@pytest.mark.parametrize("mode", ["image", "running"])
def test_sem_batch_independent_modes(mode):
    sem = _sem(sigma=mode)
    x = torch.randn(4, 64, 5, 5, generator=torch.Generator().manual_seed(2))
    if mode == "running":
        sem.train()
        for _ in range(3):
            sem(torch.randn(4, 64, 5, 5))
        assert int(sem.num_sigma_updates) == 3 and (sem.running_sigma != 1).all()
    sem.eval()
    with torch.no_grad():
        together = sem(x).maps
        alone = torch.cat([sem(x[i : i + 1]).maps for i in range(4)])
    assert (together - alone).abs().max() <= 1e-5  # conv batching rounding only
    batch = _sem().eval()
    batch.load_state_dict(sem.state_dict(), strict=False)
    with torch.no_grad():
        diff = (batch(x).maps - torch.cat([batch(x[i : i + 1]).maps for i in range(4)])).abs().max()
    assert diff > 1e-3  # the official batch scope does depend on the batch


def test_sem_image_scope_literal():
    from hashkit_plugins.attention.sem import sem_multiplier

    a = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(3))
    s, _ = sem_multiplier(a, 0.3, "image")
    ref = torch.cat([literal_multiplier(a[i : i + 1], 0.3) for i in range(3)])
    assert (s.double() - ref).abs().max() <= 1e-5


# --------------------------------------------------------------------------------------------- ICON
def literal_grouped_conv(x, weight, bias, groups):
    """1x1 grouped conv written out: output o reads the input channels of its group."""
    b, c, h, w = x.shape
    out_ch = weight.shape[0]
    per_in, per_out = c // groups, out_ch // groups
    out = torch.zeros(b, out_ch, h, w, dtype=x.dtype)
    for o in range(out_ch):
        grp = o // per_out
        out[:, o] = torch.einsum("bchw,c->bhw", x[:, grp * per_in:(grp + 1) * per_in], weight[o, :, 0, 0]) + bias[o]
    return out


def literal_bn(x, bn, training):
    if training:
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False)
    else:
        mean, var = bn.running_mean.to(x), bn.running_var.to(x)
    return (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + bn.eps) * \
        bn.weight.to(x)[None, :, None, None] + bn.bias.to(x)[None, :, None, None]


def literal_attention(q, k, v, scale):
    """rows x rows attention of one group: q, k, v (rows, N)."""
    a = (q @ k.t()) * scale
    a = torch.sign(a) * torch.sqrt(a.abs() + 1e-5)
    a = torch.exp(a - a.max(dim=1, keepdim=True).values)
    a = a / a.sum(dim=1, keepdim=True)
    return a @ v


def literal_icon(icon, x, training, residual="official"):
    x = x.double()
    b, C, H, W = x.shape
    N = H * W
    G, D = icon.groups, icon.group_size
    t = literal_grouped_conv(x, icon.qkv.weight.double(), icon.qkv.bias.double(), G).reshape(b, 3 * C, N)
    q = torch.zeros(3, b, G, D, N, dtype=torch.float64)
    for o in range(3 * C):  # (s, g, d) = (o // C, (o mod C) // D, o mod D)
        q[o // C, :, (o % C) // D, o % D] = t[:, o]
    x1 = torch.zeros(b, C, N, dtype=torch.float64)
    for i in range(b):
        for g in range(G):
            x1[i, g * D:(g + 1) * D] = literal_attention(q[0, i, g], q[1, i, g], q[2, i, g], D ** -0.5)
    x1 = x1.reshape(b, C, H, W) + x
    shuffled = torch.zeros_like(x1)
    for g in range(G):
        for d in range(D):
            shuffled[:, d * G + g] = x1[:, g * D + d]  # new channel d*G + g holds old g*D + d
    y = torch.relu(literal_bn(shuffled, icon.norm, training))
    t2 = literal_grouped_conv(y, icon.qkv2.weight.double(), icon.qkv2.bias.double(), D).reshape(b, 3 * C, N)
    q2 = torch.zeros(3, b, D, G, N, dtype=torch.float64)
    for o in range(3 * C):  # (s, d, g) = (o // C, (o mod C) // G, o mod G)
        q2[o // C, :, (o % C) // G, o % G] = t2[:, o]
    out = torch.zeros(b, C, N, dtype=torch.float64)
    for i in range(b):
        for d in range(D):
            od = literal_attention(q2[0, i, d], q2[1, i, d], q2[2, i, d], G ** -0.5)  # (G, N)
            for g in range(G):
                out[i, g * D + d] = od[g]
    out = out.reshape(b, C, H, W)
    if residual == "aligned":
        aligned = torch.zeros_like(y)
        for g in range(G):
            for d in range(D):
                aligned[:, g * D + d] = y[:, d * G + g]
        y = aligned
    return out + y


@pytest.mark.parametrize("channels,groups,size", [(64, 16, 4), (128, 16, 8)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("residual", ["official", "aligned"])
def test_icon_equals_literal_reference(channels, groups, size, training, residual):
    torch.manual_seed(0)
    icon = make_component("channel_interaction", "icon", {"residual": residual},
                          BuildContext(in_spec=FeatureSpec(channels)))
    assert (icon.groups, icon.group_size) == (groups, channels // groups)
    with torch.no_grad():
        icon.norm.running_mean.uniform_(-0.5, 0.5)
        icon.norm.running_var.uniform_(0.5, 2.0)
        icon.norm.weight.uniform_(0.5, 1.5)
        icon.norm.bias.uniform_(-0.3, 0.3)
    icon.train(training)
    x = torch.randn(2, channels, 3, 3, generator=torch.Generator().manual_seed(4)) * 2
    ref = literal_icon(icon, x, training, residual)
    out = icon(x.clone())
    assert out.shape == x.shape
    assert (out.double() - ref).abs().max().item() <= 1e-5 * max(1.0, ref.abs().max().item() / 10)


def test_icon_official_sizes():
    icon = make_component("channel_interaction", "icon", {}, BuildContext(in_spec=FeatureSpec(2048)))
    assert (icon.groups, icon.group_size) == (32, 64)
    assert tuple(icon.qkv.weight.shape) == (6144, 64, 1, 1) and tuple(icon.qkv2.weight.shape) == (6144, 32, 1, 1)
    assert sum(p.numel() for p in icon.parameters()) == 606_208
    small = make_component("channel_interaction", "icon", {}, BuildContext(in_spec=FeatureSpec(512)))
    assert (small.groups, small.group_size) == (16, 32)


# ------------------------------------------------------------------------------------------ bit split
@pytest.mark.parametrize("L,expected", [(12, [6, 2, 2, 2]), (24, [12, 4, 4, 4]), (32, [17, 5, 5, 5]),
                                        (48, [24, 8, 8, 8])])
def test_official_split_table(L, expected):
    from hashkit_plugins.heads.split_linear import split_bits

    assert split_bits(L, 4, "official") == expected
    assert split_bits(L, 4, "general") == expected


def test_split_errors_and_general_extensions():
    from hashkit_plugins.heads.split_linear import split_bits

    for L in (16, 64):
        with pytest.raises(ContractError, match="general"):
            split_bits(L, 4, "official")
    assert split_bits(16, 4, "general") == [10, 2, 2, 2]
    assert split_bits(64, 4, "general") == [34, 10, 10, 10]
    with pytest.raises(ContractError):
        split_bits(5, 4, "general")


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=6, max_value=512))
def test_general_split_property(L):
    from hashkit_plugins.heads.split_linear import split_bits

    bits = split_bits(L, 4, "general")
    assert sum(bits) == L and bits[1:] == [L // 6] * 3 and bits[0] == L - 3 * (L // 6)


@pytest.mark.parametrize("L", [12, 32])
def test_split_linear_equals_literal(L):
    torch.manual_seed(0)
    dims = {"global": 8, "local1": 8, "local2": 8, "local3": 8}
    head = make_component("hash_head", "split_linear", {}, BuildContext(code_length=L, descriptor_dims=dims))
    g = torch.Generator().manual_seed(5)
    desc = {k: torch.randn(3, 8, generator=g) for k in dims}
    out = head(desc)
    weights = [head.W_G, head.W_L1, head.W_L2, head.W_L3]
    ref = torch.zeros(3, L, dtype=torch.float64)
    for i in range(3):
        col = 0
        for f, W in zip(desc.values(), [w.detach() for w in weights]):
            for r in range(W.shape[0]):
                ref[i, col] = math.tanh(sum(float(W[r, c]) * float(f[i, c]) for c in range(8)))
                col += 1
        assert col == L
    assert (out.codes.double() - ref).abs().max() <= 1e-5
    assert not any("bias" in n for n, _ in head.named_parameters())


# ---------------------------------------------------------------------------------------- ADSH
def literal_adsh(u, B, S, omega, gamma, L):
    b, n = u.shape[0], B.shape[0]
    hash_sum = 0.0
    for i in range(b):
        for j in range(n):
            dot = sum(float(u[i, k]) * float(B[j, k]) for k in range(L))
            hash_sum += (L * float(S[i, j]) - dot) ** 2
    quant_sum = sum((float(u[i, k]) - float(B[int(omega[i]), k])) ** 2 for i in range(b) for k in range(L))
    return (12 / L) * hash_sum / (b * n) + (12 / L) * gamma * quant_sum / (b * n)


@pytest.mark.parametrize("L", [12, 24])
def test_adsh_loss_equals_literal(L):
    g = torch.Generator().manual_seed(6)
    b, n = 5, 9
    u = torch.tanh(torch.randn(b, L, generator=g)).double()
    B = torch.randn(n, L, generator=g).double()
    S = torch.where(torch.rand(b, n, generator=g) > 0.6, 1.0, -0.25).double()
    omega = torch.randperm(n, generator=g)[:b]
    loss = make_component("loss", "adsh", {}, BuildContext(code_length=L))
    res = loss(LossInputs(codes=u, protocol={"B": B, "S": S, "omega": omega}))
    ref = literal_adsh(u, B, S, omega, 200.0, L)
    assert abs(res.value.item() - ref) <= 1e-5 * max(1.0, abs(ref))
    assert abs((res.parts["hash"] + res.parts["quant"]).item() - res.value.item()) <= 1e-4


def literal_similarity(sample_labels, labels):
    m, n = sample_labels.shape[0], labels.shape[0]
    S = [[1.0 if float(sample_labels[i] @ labels[j]) > 0 else -1.0 for j in range(n)] for i in range(m)]
    pos = sum(v == 1.0 for row in S for v in row)
    neg = m * n - pos
    return torch.tensor([[1.0 if v == 1.0 else -pos / neg for v in row] for row in S], dtype=torch.float64)


def literal_dcc(B, U, S, sample_index, gamma):
    B = B.clone().double()
    n, L = B.shape
    m = U.shape[0]
    Ubar = torch.zeros(n, L, dtype=torch.float64)
    for i in range(m):
        Ubar[int(sample_index[i])] = U[i]
    Q = torch.zeros(n, L, dtype=torch.float64)
    for j in range(n):
        for k in range(L):
            Q[j, k] = L * sum(float(S[i, j]) * float(U[i, k]) for i in range(m)) + gamma * Ubar[j, k]
    for k in range(L):  # one sweep, bit order, in place
        for j in range(n):
            acc = 0.0
            for i in range(m):
                inner = sum(float(B[j, r]) * float(U[i, r]) for r in range(L) if r != k)
                acc += inner * float(U[i, k])
            val = float(Q[j, k]) - acc
            B[j, k] = (val > 0) - (val < 0)
    return B


def test_protocol_similarity_and_dcc_equal_literal():
    L, n, m = 6, 14, 8
    g = torch.Generator().manual_seed(7)
    labels = torch.nn.functional.one_hot(torch.randint(0, 3, (n,), generator=g), 3).float()
    proto = make_component("training_protocol", "adsh", {"num_samples": m, "rounds": 2, "epochs": 1},
                           BuildContext(code_length=L, num_train=n))
    proto.setup(labels, torch.Generator().manual_seed(0))
    B0 = proto.B.clone()
    assert B0.dtype == torch.float32 and not torch.equal(B0.abs(), torch.ones_like(B0))  # Gaussian, not signed
    order = proto.begin_round(0, torch.Generator().manual_seed(1))
    assert len(order) == m and len(set(order.tolist())) == m
    ref_S = literal_similarity(labels[order], labels)
    assert (proto.S.double() - ref_S).abs().max() <= 1e-6
    assert abs(proto.S.sum().item()) <= 1e-4
    for chunk in order.split(3):
        state = proto.batch_state(chunk)
        assert torch.equal(state["omega"], chunk) and torch.equal(state["B"], proto.B)
        rows = [order.tolist().index(int(i)) for i in chunk]
        assert torch.equal(state["S"], proto.S[rows])
        proto.observe(chunk, torch.tanh(torch.randn(len(chunk), L, generator=g)))
    U = proto.U.clone()
    ref_B = literal_dcc(B0, U.double(), proto.S.double(), order, 200.0)
    proto.end_round()
    assert torch.equal(proto.B.double(), ref_B)
    assert torch.equal(proto.database_codes(), torch.sign(ref_B).float())
    with pytest.raises(ContractError):
        missing = [i for i in range(n) if i not in order.tolist()][:1]
        proto.batch_state(torch.tensor(missing))


def test_protocol_state_roundtrip_and_resume():
    L, n = 12, 20
    labels = torch.nn.functional.one_hot(torch.arange(n) % 4, 4).float()
    ctx = BuildContext(code_length=L, num_train=n)
    proto = make_component("training_protocol", "adsh", {"num_samples": 10}, ctx)
    assert proto.provides == ("B", "S", "omega") and proto.database == "learned"
    proto.setup(labels, torch.Generator().manual_seed(0))
    order = proto.begin_round(3, torch.Generator().manual_seed(1))
    proto.observe(order[:4], torch.tanh(torch.randn(4, L)))
    state = proto.state_dict()
    assert set(state) == {"B", "U", "S", "sample_index", "round"}
    other = make_component("training_protocol", "adsh", {"num_samples": 10}, ctx)
    other.setup(labels, torch.Generator().manual_seed(99))
    other.load_state_dict(state)
    assert torch.equal(other.begin_round(3, torch.Generator().manual_seed(5)), order)  # restored, not redrawn
    for key in ("B", "U", "S"):
        assert torch.equal(getattr(other, key), getattr(proto, key))
    assert not torch.equal(other.begin_round(4, torch.Generator().manual_seed(5)), order)
