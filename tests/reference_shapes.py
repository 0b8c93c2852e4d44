"""State-dict name -> shape tables of reference models, written from their published layer definitions (never
read from a checkpoint), and helpers to count their parameters and fill them with random tensors
(reference-checkpoint tests of every method)."""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torchvision


def bn(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


def linear(prefix: str, out: int, inp: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (out, inp), f"{prefix}.bias": (out,)}


def bottleneck(prefix: str, cin: int, width: int, cout: int, downsample: bool) -> dict[str, tuple[int, ...]]:
    keys = {f"{prefix}.conv1.weight": (width, cin, 1, 1), **bn(f"{prefix}.bn1", width),
            f"{prefix}.conv2.weight": (width, width, 3, 3), **bn(f"{prefix}.bn2", width),
            f"{prefix}.conv3.weight": (cout, width, 1, 1), **bn(f"{prefix}.bn3", cout)}
    if downsample:
        keys |= {f"{prefix}.downsample.0.weight": (cout, cin, 1, 1), **bn(f"{prefix}.downsample.1", cout)}
    return keys


@lru_cache(maxsize=None)
def _torchvision_shapes(depth: int) -> tuple[tuple[str, tuple[int, ...]], ...]:
    with torch.device("meta"):  # names and shapes only: no memory, no init
        net = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    return tuple((k, tuple(v.shape)) for k, v in net.state_dict().items())


def resnet_shapes(prefix: str, depth: int = 50, fc: tuple[int, int] | None = None,
                  layer4: bool = True) -> dict[str, tuple[int, ...]]:
    """torchvision ResNet names under ``prefix``: its ``fc`` left out (or given the shape ``fc`` (out, in)),
    ``layer4`` left out when asked (the trunks that stop at layer3)."""
    skip = ("fc.",) if layer4 else ("fc.", "layer4.")
    shapes = {f"{prefix}{k}": s for k, s in _torchvision_shapes(depth) if not k.startswith(skip)}
    if fc is not None:
        shapes |= linear(f"{prefix}fc", *fc)
    return shapes


def layer4_shapes(prefix: str) -> dict[str, tuple[int, ...]]:
    """A plain torchvision ResNet-50 layer4 (three bottlenecks, the first with a projection) under ``prefix``."""
    return (bottleneck(f"{prefix}.0", 1024, 512, 2048, True) | bottleneck(f"{prefix}.1", 2048, 512, 2048, False)
            | bottleneck(f"{prefix}.2", 2048, 512, 2048, False))


def attention_trunk_shapes(prefix: str) -> dict[str, tuple[int, ...]]:
    """SEMICON's channel-reducing attention trunk 1024 -> 256 -> 64 (``<prefix>.0`` .. ``<prefix>.4``)."""
    shapes = bottleneck(f"{prefix}.0", 1024, 256, 1024, False)
    shapes |= {f"{prefix}.1.0.weight": (256, 1024, 1, 1), **bn(f"{prefix}.1.1", 256)}
    shapes |= bottleneck(f"{prefix}.2", 256, 64, 256, False)
    shapes |= {f"{prefix}.3.0.weight": (64, 256, 1, 1), **bn(f"{prefix}.3.1", 64)}
    return shapes | bottleneck(f"{prefix}.4", 64, 16, 64, False)


def parameter_count(shapes: dict[str, tuple[int, ...]], prefix: str = "") -> int:
    """Parameters of the keys under ``prefix`` (BatchNorm statistics and counters are buffers)."""
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    return sum(math.prod(s) for k, s in shapes.items() if k.startswith(prefix) and not k.endswith(buffers))


def random_state(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors of the given shapes, every key distinguishable (counters int64, variances positive)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, s in shapes.items():
        if k.endswith("num_batches_tracked"):
            state[k] = torch.randint(0, 100, s, generator=g)
        elif k.endswith("running_var"):
            state[k] = torch.rand(s, generator=g) + 0.5
        else:
            state[k] = torch.randn(s, generator=g) * 0.05
    return state
