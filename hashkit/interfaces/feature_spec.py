"""FeatureSpec: the declared channel count and stride of a feature map."""

from __future__ import annotations

import attrs


@attrs.frozen
class FeatureSpec:
    """A (B, channels, H / stride, W / stride) float feature map.

    ``stride`` is relative to the input image; ``None`` when the tensor is not spatial.
    """

    channels: int
    stride: int | None = None
