"""ExchNet checkpoints of ludics/fghash @ 077160f (``models/exchnet.py``); aassxun/DSH_Analysis @ 44271bc
(``models/exchnet.py``) uses the same names.

452 keys: SEMICON's skeleton with a one-shot part attention of four maps and the hash layer
``hash_layer.0`` (Linear 5 x 2048 -> L with bias). In the model composed from ``recipes/exchnet.toml``::

    reference                          hashkit
    backbone.*                         model.backbone.*
    refine_global.layer4.*             model.aggregation.refine_global.layer4.*
    refine_local.layer4.*              model.aggregation.refine_local.layer4.*
    attention.layer4.<j>.*             model.attention.0.trunk.<j>.*    (j = 0 .. 4)
    attention.layer4.5.*               model.attention.0.head.*         (64 -> 4 maps)
    hash_layer.0.*                     model.hash_head.hash.0.*

The class anchors (the running per-class local features of the exchange) are protocol state, not part of
the reference's state dict either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from torch import Tensor, nn

from hashkit_plugins.reference_checkpoints.a2net import PART_ATTENTION_RULES
from hashkit_plugins.reference_checkpoints.name_map import NameMap, load_reference_state, to_reference_state

NAMES = NameMap(rules=(("hash_layer.0.", "model.hash_head.hash.0."), *PART_ATTENTION_RULES))


def load_checkpoint(model: nn.Module, source: str | Path | Mapping[str, Tensor]) -> list[str]:
    """Load a reference ExchNet checkpoint into a model built from recipes/exchnet.toml at the same code length."""
    return load_reference_state({"model": model}, source, NAMES, "ExchNet")


def to_reference(model: nn.Module) -> dict[str, Tensor]:
    """The model's state dict under the reference's names."""
    return to_reference_state({"model": model}, NAMES)
