"""Test helpers for FISH, CHN, DPAH and DCDH: the reference models' state-dict tables (names and shapes written
from the specs' tables, not read from any checkpoint) and slow literal transcriptions of the image operations
the reference code uses (bilinear resizing with align_corners, grid sampling), in float64 numpy."""

from __future__ import annotations

import copy
import math
from functools import lru_cache
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
import torchvision


# ------------------------------------------------------------------------------------- state-dict tables
@lru_cache(maxsize=None)
def _torchvision_shapes(depth: int) -> tuple[tuple[str, tuple[int, ...]], ...]:
    with torch.device("meta"):  # names and shapes only: no memory, no init
        net = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    return tuple((k, tuple(v.shape)) for k, v in net.state_dict().items())


def resnet_shapes(prefix: str, depth: int = 50, fc: tuple[int, int] | None = None) -> dict[str, tuple[int, ...]]:
    """torchvision ResNet names under ``prefix`` (its ``fc`` left out, or given the shape ``fc`` (out, in))."""
    shapes = {f"{prefix}{k}": s for k, s in _torchvision_shapes(depth) if not k.startswith("fc.")}
    if fc is not None:
        shapes |= {f"{prefix}fc.weight": fc, f"{prefix}fc.bias": (fc[0],)}
    return shapes


def bn(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


def linear(prefix: str, out: int, inp: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (out, inp), f"{prefix}.bias": (out,)}


def fish_shapes(L: int, C: int) -> dict[str, tuple[int, ...]]:
    """models/fish.py: resnet50 under ``model.`` with fc (C x 2048) and b (L x C): 322 keys."""
    return resnet_shapes("model.", fc=(C, 2048)) | linear("model.b", L, C)


def chn_shapes(L: int, C: int) -> dict[str, tuple[int, ...]]:
    """models/chn.py CANet: 382 keys."""
    shapes = resnet_shapes("backbone.", fc=(C, L))
    for i, cin in ((1, 512), (2, 1024), (3, 2048)):
        p = f"backbone.conv_block{i}"
        shapes |= {f"{p}.0.conv.weight": (512, cin, 1, 1), **bn(f"{p}.0.bn", 512),
                   f"{p}.1.conv.weight": (1024, 512, 3, 3), **bn(f"{p}.1.bn", 1024)}
    h = "backbone.hashing_concat"
    shapes |= {**bn(f"{h}.0", 3072), **linear(f"{h}.1", 512, 3072), **bn(f"{h}.2", 512), **linear(f"{h}.4", L, 512)}
    shapes |= linear("backbone.b1", L, 1024) | linear("backbone.b2", L, 1024) | linear("backbone.b3", L, 1024)
    shapes |= linear("backbone.b_cat", L, 3072) | linear("backbone.fc_x", C, 2048)
    return shapes | {"alpha1": (1,), "alpha2": (1,)}


def dpah_shapes(L: int, C: int) -> dict[str, tuple[int, ...]]:
    """models/dpah.py: local resnet50 (with its 1000-way fc) under ``model.``, hash, imgs_semantic: 324 keys."""
    return (resnet_shapes("model.", fc=(1000, 2048)) | linear("hash", L, 2048)
            | {"imgs_semantic.mu": (L, C), "imgs_semantic.sigma": (L, C)})


def dcdh_shapes(L: int) -> dict[str, tuple[int, ...]]:
    """models/dcdh.py: local resnet50 (with its 1000-way fc) under ``model.``, hash = Linear + BatchNorm1d: 327 keys."""
    return resnet_shapes("model.", fc=(1000, 2048)) | linear("hash.0", L, 2048) | bn("hash.1", L)


def parameter_count(shapes: dict[str, tuple[int, ...]]) -> int:
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    return sum(math.prod(s) for k, s in shapes.items() if not k.endswith(buffers))


def random_state(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
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


# ------------------------------------------------------------------------------------- image operations
def bilinear_align_corners(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear resize of a 2-D array with align_corners=True, one output pixel at a time."""
    in_h, in_w = img.shape
    out = np.zeros((out_h, out_w))
    for i in range(out_h):
        y = i * (in_h - 1) / (out_h - 1) if out_h > 1 else 0.0
        y0 = int(math.floor(y))
        y1 = min(y0 + 1, in_h - 1)
        wy = y - y0
        for j in range(out_w):
            x = j * (in_w - 1) / (out_w - 1) if out_w > 1 else 0.0
            x0 = int(math.floor(x))
            x1 = min(x0 + 1, in_w - 1)
            wx = x - x0
            out[i, j] = ((1 - wy) * (1 - wx) * img[y0, x0] + (1 - wy) * wx * img[y0, x1]
                         + wy * (1 - wx) * img[y1, x0] + wy * wx * img[y1, x1])
    return out


def grid_sample_literal(image: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """``grid_sample`` of a (C, H, W) image at normalised coordinates (gx, gy) (each (H', W')): bilinear, zero
    padding, align_corners=False (pixel centres at (2i + 1) / size - 1)."""
    c, h, w = image.shape
    out = np.zeros((c, *gx.shape))
    for i in range(gx.shape[0]):
        for j in range(gx.shape[1]):
            x = ((gx[i, j] + 1) * w - 1) / 2
            y = ((gy[i, j] + 1) * h - 1) / 2
            x0, y0 = int(math.floor(x)), int(math.floor(y))
            for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
                for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
                    if 0 <= yy < h and 0 <= xx < w:
                        out[:, i, j] += wy * wx * image[:, yy, xx]
    return out


# ------------------------------------------------------------------------------------------- a training step
def demo_training_step(recipe_path, label_ids: list[int], data_seed: int, forward_seed: int) -> SimpleNamespace:
    """One training step of a proxy-code demo recipe's model (12 bits, 10 classes, four 32-px images), run
    under ``torch.manual_seed(forward_seed)``: the model and losses after ``backward``, an untouched copy of
    both (``ref``, ``ref_losses``) for the literal reference to run from the same state, and the inputs."""
    import hashkit
    from hashkit.assemble import build_losses, build_model, make_component
    from hashkit.interfaces import BuildContext, LossInputs

    recipe = hashkit.load_recipe(recipe_path)
    torch.manual_seed(0)
    model = build_model(recipe, 12, 10).train()
    proto = make_component("training_protocol", "proxy_codes", {}, BuildContext(code_length=12))
    losses = build_losses(recipe, model, proto, 12, 10)
    ref, ref_losses = copy.deepcopy(model), copy.deepcopy(losses)
    g = torch.Generator().manual_seed(data_seed)
    x = torch.randn(len(label_ids), 3, 32, 32, generator=g)
    labels = F.one_hot(torch.tensor(label_ids), 10).float()
    targets = torch.randint(0, 2, (len(label_ids), 12), generator=g).float() * 2 - 1
    torch.manual_seed(forward_seed)
    out = model(x)
    result = losses(LossInputs(codes=out.codes, logits=out.logits, class_logits=out.class_logits, labels=labels,
                               extras=out.extras, protocol={"targets": targets}))
    result.value.backward()
    return SimpleNamespace(model=model, losses=losses, ref=ref, ref_losses=ref_losses, x=x, labels=labels,
                           targets=targets, result=result)
