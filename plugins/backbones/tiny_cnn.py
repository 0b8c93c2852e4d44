"""``tiny_cnn``: a small four-stage CNN for tests, demos and CPU smoke runs.

Stages ``stage1..stage4`` with strides 2, 4, 8, 16 and channels ``width * (1, 2, 4, 8)``. Each stage is a
strided 3x3 conv + BN + ReLU followed by ``blocks - 1`` residual 3x3 blocks, so it can be copied per
branch (``build_stage``) like a ResNet stage. No pretrained weights exist for it.
"""

from __future__ import annotations

import copy
from typing import Sequence

import attrs
from torch import Tensor, nn

from hashkit.interfaces import Backbone, BuildContext, FeatureSpec


@attrs.frozen
class TinyCNNConfig:
    #: channels of stage1; later stages double
    width: int = attrs.field(default=16, validator=attrs.validators.ge(1))
    #: blocks per stage (the first one is the strided conv)
    blocks: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    #: trunk holds stages up to this one; later stages are available through build_stage
    until: str = "stage4"


class _Residual(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(ch)

    def forward(self, x: Tensor) -> Tensor:
        return (x + self.bn(self.conv(x))).relu()


def _stage(cin: int, cout: int, blocks: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
                                             nn.BatchNorm2d(cout), nn.ReLU(inplace=True))]
    layers += [_Residual(cout) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class TinyCNN(Backbone):
    """Four stages; see the module docstring."""

    NAMES = ("stage1", "stage2", "stage3", "stage4")

    def __init__(self, cfg: TinyCNNConfig):
        super().__init__()
        if cfg.until not in self.NAMES:
            from hashkit.errors import ContractError

            raise ContractError(f"tiny_cnn has no stage {cfg.until!r}; stages are {list(self.NAMES)}")
        chans = [3] + [cfg.width * m for m in (1, 2, 4, 8)]
        depth = self.NAMES.index(cfg.until) + 1
        self._templates = {n: (chans[i], chans[i + 1]) for i, n in enumerate(self.NAMES)}
        self.blocks = cfg.blocks
        self.stages = nn.ModuleDict({n: _stage(chans[i], chans[i + 1], cfg.blocks) for i, n in enumerate(self.NAMES[:depth])})
        specs = {n: FeatureSpec(chans[i + 1], 2 ** (i + 1)) for i, n in enumerate(self.NAMES)}
        self.stage_specs = {n: specs[n] for n in self.NAMES[:depth]}
        self.extra_stage_specs = {n: specs[n] for n in self.NAMES[depth:]}

    def forward(self, x: Tensor, taps: Sequence[str]) -> dict[str, Tensor]:
        return self.run_stages(x, self.stages.items(), taps)

    def build_stage(self, name: str) -> nn.Sequential:
        if name in self.stages:
            return copy.deepcopy(self.stages[name])
        if name in self._templates:
            cin, cout = self._templates[name]
            return _stage(cin, cout, self.blocks)
        return super().build_stage(name)


def build_tiny_cnn(cfg: TinyCNNConfig, ctx: BuildContext) -> TinyCNN:
    """A small four-stage CNN for tests and CPU demos (no pretrained weights)."""
    return TinyCNN(cfg)


def components(register):
    register("backbone", "tiny_cnn", build_tiny_cnn, config=TinyCNNConfig)
