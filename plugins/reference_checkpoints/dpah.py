"""DPAH checkpoints of aassxun/DSH_Analysis @ 44271bc (``models/dpah.py``, saved as ``model.pkl``).

324 keys: the local ResNet-50 under ``model.`` (including an unused 1000-way ``fc``), the code layer
``hash`` (Linear 2048 -> L) and the Gaussian layer ``imgs_semantic`` (``mu``, ``sigma``: L x C), which in
hashkit belongs to the ``gaussian_margin`` loss::

    reference                      hashkit (recipes/dpah.toml)
    model.{conv1,bn1,layer1..4}.*  model.backbone.*
    hash.{weight,bias}             model.hash_head.hash.0.*
    imgs_semantic.mu / .sigma      <gaussian_margin loss>.mu / .sigma
    model.fc.*                     loaded and dropped (2,049,000 parameters the forward never uses)

The margin schedule's counter is not in the reference checkpoint; the loss keeps its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from torch import Tensor, nn

from hashkit_plugins.losses.gaussian_margin import GaussianMargin
from hashkit_plugins.reference_checkpoints.name_map import NameMap, find_loss, load_reference_state, to_reference_state

NAMES = NameMap(rules=(("hash.", "model.hash_head.hash.0."), ("imgs_semantic.mu", "gauss.mu"),
                       ("imgs_semantic.sigma", "gauss.sigma"), ("model.", "model.backbone.")),
                ignore=("model.fc.",))


def _targets(model: nn.Module, losses: nn.Module) -> dict[str, nn.Module]:
    return {"model": model, "gauss": find_loss(losses, GaussianMargin, "DPAH")}


def load_checkpoint(model: nn.Module, losses: nn.Module, source: str | Path | Mapping[str, Tensor]) -> list[str]:
    """Load a reference DPAH ``model.pkl`` into the model and losses built from recipes/dpah.toml
    (``losses``: the recipe's loss set or the ``gaussian_margin`` loss); returns the dropped keys."""
    return load_reference_state(_targets(model, losses), source, NAMES, "DPAH")


def to_reference(model: nn.Module, losses: nn.Module) -> dict[str, Tensor]:
    """Model and Gaussian-layer state under the reference's names (without the unused ``model.fc``)."""
    return to_reference_state(_targets(model, losses), NAMES)
