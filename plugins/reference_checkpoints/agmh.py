"""AGMH checkpoints of aassxun/DSH_Analysis @ 44271bc (``models/agmh.py``, saved as ``model.pkl``).

457 keys: a whole torchvision ResNet-50 (layer4 with stride 1) under ``backbone.``, six attribute
descriptors ``refine.conv_list.<k>`` (1x1 conv 2048 -> 512 + BN), six SIEA blocks ``refine.attn_list.<k>``
and the bias-free hash matrix ``hash_map`` (L x 3072). In the model composed from ``recipes/agmh.toml``::

    reference                          hashkit
    backbone.*                         model.backbone.*
    refine.conv_list.<k>.*             model.aggregation.descriptors.<k>.*
    refine.attn_list.<k>.*             model.aggregation.siea.<k>.*
    hash_map                           model.hash_head.hash.0.weight
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from torch import Tensor, nn

from hashkit_plugins.reference_checkpoints.name_map import NameMap, load_reference_state, to_reference_state

NAMES = NameMap(rules=(
    ("backbone.", "model.backbone."),
    ("refine.conv_list.", "model.aggregation.descriptors."),
    ("refine.attn_list.", "model.aggregation.siea."),
    ("hash_map", "model.hash_head.hash.0.weight"),
))


def load_checkpoint(model: nn.Module, source: str | Path | Mapping[str, Tensor]) -> list[str]:
    """Load a reference AGMH ``model.pkl`` into a model built from recipes/agmh.toml at the same code length."""
    return load_reference_state({"model": model}, source, NAMES, "AGMH")


def to_reference(model: nn.Module) -> dict[str, Tensor]:
    """The model's state dict under the reference's names."""
    return to_reference_state({"model": model}, NAMES)
