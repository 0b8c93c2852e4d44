"""``attribute_grouping``: AGMH's attribute grouping (K convolutional descriptors) and mining (SIEA).

As aassxun/DSH_Analysis @ 44271bc (``models/agmh.py``, classes ``Refine`` and ``SIExtAttn``) computes it; the
authors' release Lx-zjwf/AGMH @ a65c547 has the same model but names an undefined attention class, so the
benchmark's ``SIExtAttn`` (the paper's stepwise interactive external attention) is built.

For the backbone map X (B, C, h, w) and k = 1..K (K = ``descriptors``, 6; width ``width``, C/4 = 512):

- grouping (``descriptors.k``): D_k = ReLU(BN(Conv1x1 C -> width, with bias)(X)); descriptor ``attr<k>`` =
  GAP(D_k) (B, width). The hash code depends on these only;
- mining (``siea.k``, :class:`SIEA`): E_k = SIEA_k(D_k), used only by the attention dispersion loss, which
  reads the extra ``attribute_maps`` (B, K, h, w) = max over channels of E_k. SIEA runs in train mode only:
  skipping it at evaluation leaves the codes identical (``siea_at_eval = true`` runs it anyway, as the
  reference does, for timing parity).

SIEA (width c, ``slots`` s = 128 memory slots, ``memories`` n = 4): Z' = conv1(Z) (1x1 c -> c, bias), flattened
to (B, c, N); Q_i = M_i Z' (s x c key memories ``qry_conv.i``, no bias); A_1 = Q_1, A_{i+1} = P_i [A_i ; Q_{i+1}]
(``alt_conv.i``, 2s -> s, no bias); softmax over the N positions, then divided by (1e-9 + its sum over the
slots); V = M_v A (``linear``, s -> c, no bias); E = ReLU(BN(conv2(V)) + Z) (``conv2.0`` 1x1 no bias,
``conv2.1`` BN). The residual is the module input Z.

Init (reference): descriptor convs ``kaiming_normal_(fan_out, relu)`` with PyTorch's default bias; SIEA Conv1d
weights N(0, 2 / (kernel * out)); SIEA Conv2d weights ``kaiming_normal_(fan_out, relu)`` (the reference draws
them twice from the same distribution), ``conv1.bias`` default; every BN weight 1 / bias 0.

Reference names: ``refine.conv_list.k.*`` -> ``descriptors.k.*``, ``refine.attn_list.k.*`` -> ``siea.k.*``
(SIEA's own names are kept). 2,001,920 parameters per k at C = 2048.

Tensor contract: ``features`` X (B, C, h, w) -> descriptors ``{attr1 .. attrK}`` (B, width) each; extras
``attribute_maps`` (B, K, h, w) in train mode (and with ``siea_at_eval``).
"""

from __future__ import annotations

import math

import attrs
import torch
from torch import Tensor, nn

from hashkit.errors import ContractError
from hashkit.interfaces import Aggregation, AggregationInput, AggregationOutput, BuildContext
from hashkit_plugins.backbones.resnet import init_weights


@attrs.frozen
class AttributeGroupingConfig:
    #: K, the number of descriptors (the reference's top_k + 1 = 6)
    descriptors: int = attrs.field(default=6, validator=attrs.validators.ge(1))
    #: channels of each descriptor; 0 = a quarter of the input channels (512 at ResNet-50's layer4)
    width: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    #: SIEA memory slots (the reference's k = 128)
    slots: int = attrs.field(default=128, validator=attrs.validators.ge(1))
    #: SIEA key memories, fused step by step (the reference's num_heads = 4)
    memories: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    #: run SIEA in eval mode too (the reference does; the codes do not depend on it)
    siea_at_eval: bool = False


class SIEA(nn.Module):
    """Stepwise interactive external attention on a (B, c, h, w) map; see the module docstring."""

    def __init__(self, channels: int, slots: int, memories: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 1)
        self.qry_conv = nn.ModuleList(nn.Conv1d(channels, slots, 1, bias=False) for _ in range(memories))
        self.alt_conv = nn.ModuleList(nn.Conv1d(2 * slots, slots, 1, bias=False) for _ in range(memories - 1))
        self.linear = nn.Conv1d(slots, channels, 1, bias=False)
        self.conv2 = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels))
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / (m.kernel_size[0] * m.out_channels)))
        init_weights(self)

    def forward(self, z: Tensor) -> Tensor:
        b, c, h, w = z.shape
        flat = self.conv1(z).flatten(2)
        queries = [conv(flat) for conv in self.qry_conv]
        attn = queries[0]
        for fuse, query in zip(self.alt_conv, queries[1:]):
            attn = fuse(torch.cat([attn, query], dim=1))
        attn = attn.softmax(dim=-1)
        attn = attn / (1e-9 + attn.sum(dim=1, keepdim=True))
        return torch.relu(self.conv2(self.linear(attn).reshape(b, c, h, w)) + z)


class AttributeGrouping(Aggregation):
    def __init__(self, cfg: AttributeGroupingConfig, channels: int):
        super().__init__()
        self.cfg = cfg
        width = cfg.width or channels // 4
        if width < 1:
            raise ContractError(f"attribute_grouping: {channels} input channels give a descriptor width of 0; set width")
        self.descriptors = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, width, 1), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
            for _ in range(cfg.descriptors)
        )
        init_weights(self.descriptors)
        self.siea = nn.ModuleList(SIEA(width, cfg.slots, cfg.memories) for _ in range(cfg.descriptors))
        self.descriptor_dims = {f"attr{k + 1}": width for k in range(cfg.descriptors)}

    def forward(self, inp: AggregationInput) -> AggregationOutput:
        groups = [branch(inp.features) for branch in self.descriptors]
        descriptors = {name: d.mean(dim=(2, 3)) for name, d in zip(self.descriptor_dims, groups)}
        extras = {}
        if self.training or self.cfg.siea_at_eval:
            extras["attribute_maps"] = torch.stack([mine(d).amax(dim=1) for mine, d in zip(self.siea, groups)], 1)
        return AggregationOutput(descriptors=descriptors, extras=extras)


def build_attribute_grouping(cfg: AttributeGroupingConfig, ctx: BuildContext) -> AttributeGrouping:
    """AGMH: K conv descriptors of the backbone map (GAP each) and SIEA attention maps for the dispersion loss."""
    return AttributeGrouping(cfg, ctx.input_channels("attribute_grouping"))


def _example():
    from hashkit.testing import ComponentExample, expect

    def check(comp, out):
        names = list(out.descriptors)
        expect(names == [f"attr{k}" for k in range(1, 7)], f"descriptors {names}, expected attr1 .. attr6")
        shape = tuple(out.extras["attribute_maps"].shape)
        expect(shape == (2, 6, 8, 8), f"attribute_maps {shape}, expected (2, 6, 8, 8)")

    return ComponentExample(config={"slots": 8}, check=check)


def components(register):
    register("aggregation", "attribute_grouping", build_attribute_grouping, config=AttributeGroupingConfig,
             example=_example)
