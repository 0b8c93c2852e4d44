"""A2-Net checkpoints of aassxun/DSH_Analysis @ 44271bc (``models/A_2_net.py``, saved as ``model.pkl``).

The reference module is SEMICON's skeleton (ResNet-50 trunk to layer3, global and shared local layer4
copies) with a one-shot part attention, the hash matrix ``W`` and two image generators (``encoder``,
``encoder2``, ``netG``, ``netG2``) that its training never uses: they load and are dropped (527 keys, 451
without them). In the model composed from ``recipes/a2net.toml`` with ``num_maps = "code_length"`` (the
benchmark's M = L)::

    reference                          hashkit
    backbone.*                         model.backbone.*
    refine_global.layer4.*             model.aggregation.refine_global.layer4.*
    refine_local.layer4.*              model.aggregation.refine_local.layer4.*
    attention.layer4.<j>.*             model.attention.0.trunk.<j>.*    (j = 0 .. 4)
    attention.layer4.5.*               model.attention.0.head.*         (64 -> M maps)
    W                                  model.hash_head.hash.0.weight    (L x (M + 1) 2048, tied decoder)
    encoder*, netG*                    loaded and dropped
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from torch import Tensor, nn

from hashkit_plugins.reference_checkpoints.name_map import NameMap, load_reference_state, to_reference_state
from hashkit_plugins.reference_checkpoints.semicon import SKELETON_RULES

#: the one-shot part attention's map head, before the skeleton's trunk rules
PART_ATTENTION_RULES = (("attention.layer4.5.", "model.attention.0.head."), *SKELETON_RULES)

NAMES = NameMap(rules=(("W", "model.hash_head.hash.0.weight"), *PART_ATTENTION_RULES),
                ignore=("encoder.", "encoder2.", "netG.", "netG2."))


def load_checkpoint(model: nn.Module, source: str | Path | Mapping[str, Tensor]) -> list[str]:
    """Load a reference A2-Net ``model.pkl`` into a model built from recipes/a2net.toml at the same code length
    and number of maps; returns the dropped generator keys."""
    return load_reference_state({"model": model}, source, NAMES, "A2-Net")


def to_reference(model: nn.Module) -> dict[str, Tensor]:
    """The model's state dict under the reference's names (without the unused generators)."""
    return to_reference_state({"model": model}, NAMES)
