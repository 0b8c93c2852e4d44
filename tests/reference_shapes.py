"""State-dict name -> shape tables of reference models, written from their published layer definitions, and
helpers to count their parameters and fill them with random tensors (reference-checkpoint tests)."""

from __future__ import annotations

import functools

import torch
import torchvision


def bn(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


def bottleneck(prefix: str, cin: int, width: int, cout: int, downsample: bool) -> dict[str, tuple[int, ...]]:
    keys = {f"{prefix}.conv1.weight": (width, cin, 1, 1), **bn(f"{prefix}.bn1", width),
            f"{prefix}.conv2.weight": (width, width, 3, 3), **bn(f"{prefix}.bn2", width),
            f"{prefix}.conv3.weight": (cout, width, 1, 1), **bn(f"{prefix}.bn3", cout)}
    if downsample:
        keys |= {f"{prefix}.downsample.0.weight": (cout, cin, 1, 1), **bn(f"{prefix}.downsample.1", cout)}
    return keys


@functools.cache
def _torchvision_resnet50() -> tuple[tuple[str, tuple[int, ...]], ...]:
    return tuple((k, tuple(v.shape)) for k, v in torchvision.models.resnet50(weights=None).state_dict().items())


def resnet50_shapes(prefix: str, with_layer4: bool) -> dict[str, tuple[int, ...]]:
    """torchvision ResNet-50 names under ``prefix`` (no fc; layer4 only when asked)."""
    skip = ("fc.",) if with_layer4 else ("fc.", "layer4.")
    return {f"{prefix}{k}": s for k, s in _torchvision_resnet50() if not k.startswith(skip)}


def layer4_shapes(prefix: str) -> dict[str, tuple[int, ...]]:
    """A plain torchvision layer4 (three bottlenecks, the first with a projection) under ``prefix``."""
    return (bottleneck(f"{prefix}.0", 1024, 512, 2048, True) | bottleneck(f"{prefix}.1", 2048, 512, 2048, False)
            | bottleneck(f"{prefix}.2", 2048, 512, 2048, False))


def attention_trunk_shapes(prefix: str) -> dict[str, tuple[int, ...]]:
    """SEMICON's channel-reducing attention trunk 1024 -> 256 -> 64 (``<prefix>.0`` .. ``<prefix>.4``)."""
    shapes = bottleneck(f"{prefix}.0", 1024, 256, 1024, False)
    shapes |= {f"{prefix}.1.0.weight": (256, 1024, 1, 1), **bn(f"{prefix}.1.1", 256)}
    shapes |= bottleneck(f"{prefix}.2", 256, 64, 256, False)
    shapes |= {f"{prefix}.3.0.weight": (64, 256, 1, 1), **bn(f"{prefix}.3.1", 64)}
    return shapes | bottleneck(f"{prefix}.4", 64, 16, 64, False)


def param_count(shapes: dict[str, tuple[int, ...]], prefix: str = "") -> int:
    total = 0
    for k, s in shapes.items():
        if k.startswith(prefix) and not k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            total += int(torch.tensor(s).prod()) if s else 1
    return total


def random_state(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors of the given shapes (counters as int64), so every key is distinguishable."""
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randint(0, 100, s, generator=g) if k.endswith("num_batches_tracked") else torch.randn(s, generator=g)
            for k, s in shapes.items()}
