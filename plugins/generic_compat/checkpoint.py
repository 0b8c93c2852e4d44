"""Reference state-dict names of the generic baselines' networks -> hashkit model names, and loading them.

The hashkit models are those of ``recipes/generic/`` (``gap`` aggregation, ``linear`` hash head without hidden
layer: its Linear is ``hash_head.hash.0``, or ``hash_head.hash.1`` after a dropout)::

    DeepHash-pytorch network.AlexNet(hash_bit)      hashkit (backbone alexnet, tap fc7)
    features.<i>.<p>                                backbone.features.<i>.<p>
    hash_layer.1.<p>   (fc6)                        backbone.fc6.1.<p>
    hash_layer.4.<p>   (fc7)                        backbone.fc7.1.<p>
    hash_layer.6.<p>   (Linear(4096, L))            hash_head.hash.<k>.<p>

    DeepHash-pytorch network.ResNet(hash_bit)       hashkit (backbone resnet50, tap layer4)
    conv1 / bn1 / layer1..4 .<p>                    backbone.<same>
    feature_layers.<i>.<p>                          (aliases of the same modules: checked equal, not loaded twice)
    hash_layer.<p>     (Linear(2048, L))            hash_head.hash.<k>.<p>

    DSH_Analysis models/resnet.resnet50(num_classes = L)
    conv1 / bn1 / layer1..4 .<p>                    backbone.<same>
    fc.<p>                                          hash_head.hash.<k>.<p>

A ``module.`` prefix is removed. The map is one to one: every reference tensor has a destination and every
model tensor a source (``hash_head`` BatchNorm buffers excepted when the recipe has none), so the parameter
counts are equal (tests/test_generic_compat.py).
"""

from __future__ import annotations

import re
from typing import Mapping

import torch
from torch import Tensor, nn

from hashkit.errors import CheckpointError

_RESNET = re.compile(r"^(conv1|bn1|layer[1-4])\.")
_ALEXNET_FC = {"hash_layer.1.": "backbone.fc6.1.", "hash_layer.4.": "backbone.fc7.1."}


def hashkit_name(reference: str, head_linear: str = "hash_head.hash.0.") -> str | None:
    """The hashkit name of a reference state-dict name (``None``: an alias with no own tensor)."""
    name = reference.removeprefix("module.")
    if name.startswith("feature_layers."):
        return None
    if name.startswith("features.") or _RESNET.match(name):
        return "backbone." + name
    for old, new in _ALEXNET_FC.items():
        if name.startswith(old):
            return new + name[len(old):]
    for head in ("hash_layer.6.", "hash_layer.", "fc."):
        if name.startswith(head):
            return head_linear + name[len(head):]
    raise CheckpointError(f"reference state-dict name {reference!r} has no hashkit counterpart")


def _head_prefix(model: nn.Module) -> str:
    linears = [n for n, m in model.named_modules() if n.startswith("hash_head.hash.") and isinstance(m, nn.Linear)]
    if len(linears) != 1:
        raise CheckpointError(f"the model's hash head has {len(linears)} linear layers; the reference has one")
    return linears[0] + "."


def load_reference_state_dict(model: nn.Module, state: Mapping[str, Tensor]) -> list[str]:
    """Load a DeepHash-pytorch / DSH_Analysis state dict into ``model`` one to one; returns the loaded names."""
    head = _head_prefix(model)
    mapped: dict[str, Tensor] = {}
    aliases = {}
    for key, value in state.items():
        name = hashkit_name(key, head)
        if name is None:
            aliases[key] = value
            continue
        if name in mapped:
            raise CheckpointError(f"two reference tensors map to {name}")
        mapped[name] = value
    own = model.state_dict()
    for key, value in aliases.items():  # DeepHash-pytorch ResNet: feature_layers.<i> repeats conv1 ... layer4
        if not any(torch.equal(value, v) for k, v in mapped.items() if k.endswith(key.split(".", 2)[-1])):
            raise CheckpointError(f"{key} is not an alias of a loaded tensor")
    missing = sorted(set(own) - set(mapped))
    unexpected = sorted(set(mapped) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"reference state dict does not match the model: missing {missing[:4]}, "
                              f"unexpected {unexpected[:4]}")
    model.load_state_dict(mapped, strict=True)
    return sorted(mapped)
