"""DAHNet checkpoints of aassxun/DSH_Analysis @ 44271bc (``models/DAHNET.py``, saved as ``model.pkl``).

430 keys. In the model composed from ``recipes/dahnet.toml`` (or ``dahnet-minus.toml``) at the same code length
and number of classes::

    reference                                hashkit
    backbone.*                               model.backbone.*
    attention.stripconv{,_h}.*               model.attention.0.stripconv{,_h}.*   (FESM)
    trans.layer4.0.*                         model.aggregation.local_stem.*
    refine_global.layer4.*                   model.aggregation.refine_global.layer4.*
    refine_local.layer4.{0,2}.*              model.aggregation.refine_local.layer4.{0,2}.*
    refine_local.layer4.1.channel_mixer.*    model.aggregation.refine_local.layer4.1.*   (CFM)
    W_G, W_L1, W_L2, W_L3                    model.hash_head.W_G, ...
    cls.*, cls_loc.*                         model.hash_head.cls.*, model.hash_head.cls_loc.*
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from torch import Tensor, nn

from hashkit_plugins.reference_checkpoints.name_map import NameMap, load_reference_state, to_reference_state

NAMES = NameMap(rules=(
    ("backbone.", "model.backbone."),
    ("attention.", "model.attention.0."),
    ("trans.layer4.0.", "model.aggregation.local_stem."),
    ("refine_global.", "model.aggregation.refine_global."),
    ("refine_local.layer4.1.channel_mixer.", "model.aggregation.refine_local.layer4.1."),
    ("refine_local.", "model.aggregation.refine_local."),
    *((w, f"model.hash_head.{w}") for w in ("W_G", "W_L1", "W_L2", "W_L3")),
    ("cls.", "model.hash_head.cls."),
    ("cls_loc.", "model.hash_head.cls_loc."),
))


def load_checkpoint(model: nn.Module, source: str | Path | Mapping[str, Tensor]) -> list[str]:
    """Load a reference DAHNet ``model.pkl`` into a model built from recipes/dahnet.toml at the same code length
    and number of classes."""
    return load_reference_state({"model": model}, source, NAMES, "DAHNet")


def to_reference(model: nn.Module) -> dict[str, Tensor]:
    """The model's state dict under the reference's names."""
    return to_reference_state({"model": model}, NAMES)
