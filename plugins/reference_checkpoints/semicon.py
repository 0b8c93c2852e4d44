"""SEMICON checkpoints of the official code, aassxun/SEMICON @ 885cbfe0 (``models/SEMICON.py``; ``SEMICON_train.py``
saves ``model.state_dict()`` as ``model.pth``).

502 keys in five top-level parts; in the model composed from ``recipes/semicon.toml`` (the SEM is
``[[model.attention]]`` 0) they live at::

    official                           hashkit (recipes/semicon.toml)
    backbone.*                         model.backbone.*                    (torchvision names)
    refine_global.layer4.*             model.aggregation.refine_global.layer4.*
    refine_local.layer4.*              model.aggregation.refine_local.layer4.*
    attention.layer4.<j>.*             model.attention.0.trunk.<j>.*       (j = 0 .. 4)
    attention.feature<k>.*             model.attention.0.heads.<k-1>.*     (k = 1, 2, 3)
    W_G, W_L1, W_L2, W_L3              model.hash_head.W_G, ...

Buffers hashkit adds for non-official options (SEM's ``running_sigma`` with ``sigma = "running"``) have no
official name and are left as they are. :data:`SKELETON_RULES` (backbone, the two refine branches and the
channel-reducing attention trunk) is shared by the other methods built on SEMICON's skeleton (A2-Net,
ExchNet).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from torch import Tensor, nn

from hashkit_plugins.reference_checkpoints.name_map import NameMap, load_reference_state, to_reference_state

#: backbone, refine branches and attention trunk ``attention.layer4.0..4`` (specific rules come before these)
SKELETON_RULES = (
    ("backbone.", "model.backbone."),
    ("refine_global.", "model.aggregation.refine_global."),
    ("refine_local.", "model.aggregation.refine_local."),
    *((f"attention.layer4.{j}.", f"model.attention.0.trunk.{j}.") for j in range(5)),
)

NAMES = NameMap(rules=(
    *((f"attention.feature{k}.", f"model.attention.0.heads.{k - 1}.") for k in (1, 2, 3)),
    *((w, f"model.hash_head.{w}") for w in ("W_G", "W_L1", "W_L2", "W_L3")),
    *SKELETON_RULES,
))


def load_checkpoint(model: nn.Module, source: str | Path | Mapping[str, Tensor]) -> list[str]:
    """Load an official SEMICON ``model.pth`` (path or state dict) into a model built from recipes/semicon.toml."""
    return load_reference_state({"model": model}, source, NAMES, "SEMICON")


def to_reference(model: nn.Module) -> dict[str, Tensor]:
    """The model's state dict under the official names."""
    return to_reference_state({"model": model}, NAMES)
