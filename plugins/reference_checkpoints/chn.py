"""CHN checkpoints: aassxun/DSH_Analysis @ 44271bc ``models/chn.py`` and kaiba007/FG-CHN @ 3375298 ``CANet``.

382 keys: a torchvision ResNet-50 under ``backbone.`` with CHN's layers attached to it, plus the loss-balance
scalars ``alpha1``, ``alpha2`` (in hashkit they belong to the ``uncertainty_balance`` loss)::

    reference                         hashkit (recipes/chn.toml)
    backbone.{conv1,bn1,layer1..4}.*  model.backbone.*
    backbone.conv_block1/2/3.*        model.aggregation.inner.blocks.layer2/3/4.*
    backbone.hashing_concat.*         model.hash_head.hashing_concat.*
    backbone.{b1,b2,b3,b_cat,fc,fc_x}.*  model.hash_head.{b1,b2,b3,b_cat,fc,fc_x}.*
    alpha1, alpha2                    <uncertainty_balance loss>.alpha.0, .alpha.1

The official repository's PyTorch Lightning checkpoints (``*.ckpt``) hold the same names under ``model.``
inside ``state_dict``: both load. With ``chn_head.unused_heads = false`` the never-used ``b1``, ``b2``,
``b_cat`` and ``fc_x`` load and are dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from torch import Tensor, nn

from hashkit_plugins.losses.uncertainty_balance import UncertaintyBalance
from hashkit_plugins.reference_checkpoints.name_map import NameMap, find_loss, load_reference_state, to_reference_state

UNUSED = ("b1", "b2", "b_cat", "fc_x")


def _name_map(with_unused: bool) -> NameMap:
    heads = ("hashing_concat", "b3", "fc", *(UNUSED if with_unused else ()))
    rules = (
        ("alpha1", "balance.alpha.0"), ("alpha2", "balance.alpha.1"),
        *((f"backbone.conv_block{i}.", f"model.aggregation.inner.blocks.layer{i + 1}.") for i in (1, 2, 3)),
        *((f"backbone.{n}.", f"model.hash_head.{n}.") for n in heads),
        ("backbone.", "model.backbone."),
    )
    ignore = () if with_unused else tuple(f"backbone.{n}." for n in UNUSED)
    return NameMap(rules=rules, ignore=ignore, strip_prefixes=("module.", "model."))


NAMES = _name_map(with_unused=True)
NAMES_WITHOUT_UNUSED = _name_map(with_unused=False)


def _names(model: nn.Module) -> NameMap:
    return NAMES if hasattr(model.hash_head, "b_cat") else NAMES_WITHOUT_UNUSED


def _targets(model: nn.Module, losses: nn.Module) -> dict[str, nn.Module]:
    return {"model": model, "balance": find_loss(losses, UncertaintyBalance, "CHN")}


def load_checkpoint(model: nn.Module, losses: nn.Module, source: str | Path | Mapping[str, Tensor]) -> list[str]:
    """Load a reference (DSH_Analysis ``model.pkl``) or official (FG-CHN ``.ckpt``) CHN checkpoint into the model
    and losses built from recipes/chn.toml (``losses``: the recipe's loss set or the ``uncertainty_balance``
    loss); returns the dropped keys."""
    return load_reference_state(_targets(model, losses), source, _names(model), "CHN")


def to_reference(model: nn.Module, losses: nn.Module) -> dict[str, Tensor]:
    """Model and α state under the reference's names."""
    return to_reference_state(_targets(model, losses), _names(model))
