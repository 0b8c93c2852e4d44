"""DCDH checkpoints of aassxun/DSH_Analysis @ 44271bc (``models/dcdh.py``, saved as ``model.pkl``).

327 keys: the local ResNet-50 under ``model.`` (torchvision names, including an unused 1000-way ``fc``) and
the code layer ``hash = Sequential(Linear(2048, L), BatchNorm1d(L))``::

    reference                      hashkit (recipes/dcdh.toml)
    model.{conv1,bn1,layer1..4}.*  model.backbone.*
    hash.0.*, hash.1.*             model.hash_head.hash.0.*, model.hash_head.hash.1.*
    model.fc.*                     loaded and dropped (2,049,000 parameters the forward never uses)
    *.total_ops, *.total_params    dropped (counters some thop versions leave on every module)

The class centres live in the reference's loss object, outside the model, and are not saved: a loaded model
keeps the centres of its own ``dual_classwise`` loss. The official repository (mzhang367/DCDH-PyTorch @
df19abb) trains face networks (DFHNet, SphereNet-20) whose names have no ResNet-50 counterpart: its
checkpoints do not load into this model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from torch import Tensor, nn

from hashkit_plugins.reference_checkpoints.name_map import NameMap, load_reference_state, to_reference_state

NAMES = NameMap(rules=(("hash.", "model.hash_head.hash."), ("model.", "model.backbone.")),
                ignore=("model.fc.",), ignore_suffixes=("total_ops", "total_params"))


def load_checkpoint(model: nn.Module, source: str | Path | Mapping[str, Tensor]) -> list[str]:
    """Load a reference DCDH ``model.pkl`` into a model built from recipes/dcdh.toml; returns the dropped keys."""
    return load_reference_state({"model": model}, source, NAMES, "DCDH")


def to_reference(model: nn.Module) -> dict[str, Tensor]:
    """The model's state dict under the reference's names (without the unused ``model.fc``)."""
    return to_reference_state({"model": model}, NAMES)
