"""FISH checkpoints of aassxun/DSH_Analysis @ 44271bc (``models/fish.py``, saved as ``model.pkl``).

The reference module is a torchvision ResNet-50 with ``fc`` replaced and a hash layer ``b`` attached to it
(322 keys)::

    reference                      hashkit (recipes/fish.toml)
    model.{conv1,bn1,layer1..4}.*  model.backbone.*
    model.fc.{weight,bias}         model.hash_head.fc.*      (C x 2048 classifier)
    model.b.{weight,bias}          model.hash_head.b.*       (L x C hash layer)
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from torch import Tensor, nn

from hashkit_plugins.reference_checkpoints.name_map import NameMap, load_reference_state, to_reference_state

NAMES = NameMap(rules=(("model.fc.", "model.hash_head.fc."), ("model.b.", "model.hash_head.b."),
                       ("model.", "model.backbone.")))


def load_checkpoint(model: nn.Module, source: str | Path | Mapping[str, Tensor]) -> list[str]:
    """Load a reference FISH ``model.pkl`` (path or state dict) into a model built from recipes/fish.toml."""
    return load_reference_state({"model": model}, source, NAMES, "FISH")


def to_reference(model: nn.Module) -> dict[str, Tensor]:
    """The model's state dict under the reference's names."""
    return to_reference_state({"model": model}, NAMES)
