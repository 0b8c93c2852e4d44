"""``level_conv_pool``: one conv block + global max pooling per tapped backbone level (CHN's pyramid taps).

For each stage ``s`` of ``stages`` (CHN: layer2, layer3, layer4 of a ResNet-50)::

    g_s = GMP( BasicConv3x3(hidden -> out)( BasicConv1x1(C_s -> hidden)(F_s) ) )        (B, out)

with ``BasicConv = Conv2d (no bias) -> BatchNorm2d(momentum = bn_momentum, affine) -> ReLU`` and the 3x3 conv
padded by 1. CHN (aassxun/DSH_Analysis @ 44271bc ``models/chn.py``, identical in kaiba007/FG-CHN) uses
hidden 512, out 1024 and BatchNorm momentum 0.01; the blocks are its ``conv_block1..3``. Module names:
``blocks.<stage>.{0,1}.{conv,bn}`` (block 2 of the reference Sequential is the parameter-free max pool).

Tensor contract: ``stages`` ``{s: (B, C_s, h_s, w_s)}`` (every configured stage must be tapped by the model)
-> descriptors ordered as ``stages``, ``{s: (B, out)}``. ``features`` and ``maps`` are not read.
"""

from __future__ import annotations

import attrs
import torch.nn.functional as F
from torch import Tensor, nn

from hashkit.errors import ContractError
from hashkit.interfaces import Aggregation, AggregationInput, AggregationOutput, BuildContext


@attrs.frozen
class LevelConvPoolConfig:
    #: tapped stages, one block each, in descriptor order (CHN: layer2, layer3, layer4)
    stages: tuple[str, ...] = ("layer2", "layer3", "layer4")
    #: channels after the 1x1 conv (CHN: 512)
    hidden: int = attrs.field(default=512, validator=attrs.validators.ge(1))
    #: channels after the 3x3 conv = descriptor width (CHN: 1024)
    out: int = attrs.field(default=1024, validator=attrs.validators.ge(1))
    #: BatchNorm2d momentum of the blocks (CHN: 0.01; PyTorch's default is 0.1)
    bn_momentum: float = attrs.field(default=0.01, validator=[attrs.validators.gt(0.0), attrs.validators.le(1.0)])


class BasicConv(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> ReLU, children named ``conv``, ``bn``, ``relu``."""

    def __init__(self, cin: int, cout: int, kernel: int, bn_momentum: float):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout, momentum=bn_momentum)
        self.relu = nn.ReLU()


class LevelConvPool(Aggregation):
    def __init__(self, cfg: LevelConvPoolConfig, channels: dict[str, int]):
        super().__init__()
        self.cfg = cfg
        self.blocks = nn.ModuleDict({
            s: nn.Sequential(BasicConv(channels[s], cfg.hidden, 1, cfg.bn_momentum),
                             BasicConv(cfg.hidden, cfg.out, 3, cfg.bn_momentum))
            for s in cfg.stages
        })
        self.descriptor_dims = {s: cfg.out for s in cfg.stages}

    def forward(self, inp: AggregationInput) -> AggregationOutput:
        missing = [s for s in self.cfg.stages if s not in inp.stages]
        if missing:
            raise ContractError(f"level_conv_pool: stages {missing} are not in the aggregation input "
                                f"(tapped: {list(inp.stages)})")
        return AggregationOutput(descriptors={s: self._pool(self.blocks[s](inp.stages[s])) for s in self.cfg.stages})

    @staticmethod
    def _pool(x: Tensor) -> Tensor:
        return F.adaptive_max_pool2d(x, 1).flatten(1)  # as nn.AdaptiveMaxPool2d: the gradient goes to one argmax


def build_level_conv_pool(cfg: LevelConvPoolConfig, ctx: BuildContext) -> LevelConvPool:
    """A 1x1 + 3x3 conv block and global max pooling per tapped stage (CHN's multi-level taps)."""
    if not cfg.stages:
        raise ContractError("level_conv_pool needs at least one stage")
    missing = [s for s in cfg.stages if s not in ctx.stages]
    if missing:
        raise ContractError(f"level_conv_pool needs the stages {missing} tapped by the model (taps: "
                            f"{list(ctx.stages)}); add them to model.taps")
    return LevelConvPool(cfg, {s: ctx.stages[s].channels for s in cfg.stages})


def _example():
    import torch

    from hashkit.interfaces import FeatureSpec
    from hashkit.testing import ComponentExample

    g = torch.Generator().manual_seed(0)
    specs = {"stage2": FeatureSpec(8, 4), "stage3": FeatureSpec(16, 8)}
    stages = {"stage2": torch.randn(2, 8, 8, 8, generator=g), "stage3": torch.randn(2, 16, 4, 4, generator=g)}
    return ComponentExample(config={"stages": ["stage2", "stage3"], "hidden": 4, "out": 6},
                            ctx=BuildContext(in_spec=specs["stage3"], stages=specs),
                            inputs=(AggregationInput(features=stages["stage3"], stages=stages),))


def components(register):
    register("aggregation", "level_conv_pool", build_level_conv_pool, config=LevelConvPoolConfig, example=_example)
