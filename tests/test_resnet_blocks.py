"""hashkit's ResNet blocks equal torchvision's: same names and order, same seeded initial weights, same
outputs (so torchvision checkpoints load by name and the SEMICON parity holds without importing torchvision)."""

from __future__ import annotations

import pytest
import torch
import torchvision.models.resnet as tv
from torch import nn

from hashkit_plugins import resnet_blocks as hk


@pytest.mark.parametrize("name,inplanes,planes,stride", [("BasicBlock", 8, 8, 1), ("BasicBlock", 8, 16, 2),
                                                         ("Bottleneck", 16, 4, 1), ("Bottleneck", 8, 4, 2)])
def test_block_equals_torchvision(name, inplanes, planes, stride):
    def build(lib):
        torch.manual_seed(7)
        block = getattr(lib, name)
        out = planes * block.expansion
        down = nn.Sequential(lib.conv1x1(inplanes, out, stride), nn.BatchNorm2d(out)) \
            if stride != 1 or inplanes != out else None
        return block(inplanes, planes, stride, down)

    ours, theirs = build(hk), build(tv)
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    x = torch.randn(2, inplanes, 9, 9, generator=torch.Generator().manual_seed(1))
    for mode in (True, False):
        assert torch.equal(ours.train(mode)(x), theirs.train(mode)(x))
