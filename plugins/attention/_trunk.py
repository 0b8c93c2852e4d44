"""The channel-reducing attention trunk shared by SEMICON's SEM and the one-shot part attention of A2-Net
and ExchNet (same module in the three reference codes, ``attention.layer4.0..4``).

For C input channels (a multiple of 64), everything stride 1 so the spatial size is kept::

    0  Bottleneck(C, width C/4, out C)          (identity shortcut)
    1  Conv1x1 C -> C/4 (no bias) + BN          (no ReLU)
    2  Bottleneck(C/4, width C/16, out C/4)
    3  Conv1x1 C/4 -> C/16 + BN                 (no ReLU)
    4  Bottleneck(C/16, width C/64, out C/16)

At resnet50's layer3 (C = 1024): 1024 -> 256 -> 64 channels, 1,471,296 parameters.
"""

from __future__ import annotations

from torch import nn
from hashkit_plugins.resnet_blocks import Bottleneck, conv1x1

from hashkit.errors import ContractError


def channel_reducing_trunk(channels: int, owner: str) -> nn.Sequential:
    """The five-module trunk for ``channels`` inputs; ``owner`` names the component in the error."""
    if channels < 64 or channels % 64:
        raise ContractError(f"{owner} needs input channels that are a multiple of 64 (C -> C/4 -> C/16), "
                            f"found {channels}")
    c1, c2, c3 = channels, channels // 4, channels // 16
    return nn.Sequential(
        Bottleneck(c1, c1 // 4),
        nn.Sequential(conv1x1(c1, c2), nn.BatchNorm2d(c2)),
        Bottleneck(c2, c2 // 4),
        nn.Sequential(conv1x1(c2, c3), nn.BatchNorm2d(c3)),
        Bottleneck(c3, c3 // 4),
    )
