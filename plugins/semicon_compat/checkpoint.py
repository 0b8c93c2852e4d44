"""Official SEMICON state-dict names <-> hashkit SEMICON model names, and loading an official checkpoint.

The official ``models/SEMICON.py`` module has five top-level parts; in a hashkit model composed from
``recipes/semicon.toml`` they live at (``i`` = the SEM's position in ``[[model.attention]]``, 0 there)::

    official                              hashkit
    backbone.<rest>                       backbone.<rest>                  (torchvision names)
    refine_global.layer4.<j>.<rest>       aggregation.refine_global.layer4.<j>.<rest>
    refine_local.layer4.<j>.<rest>        aggregation.refine_local.layer4.<j>.<rest>
    attention.layer4.<j>.<rest>           attention.<i>.trunk.<j>.<rest>
    attention.feature<k>.<rest>           attention.<i>.heads.<k-1>.<rest>   (k = 1, 2, 3)
    W_G, W_L1, W_L2, W_L3                 hash_head.W_G, hash_head.W_L1, ...

A ``module.`` prefix (``nn.DataParallel``) on official names is removed. The map is one-to-one on the
502 keys of the official model (checked in tests/test_semicon_model.py). Buffers hashkit adds for
non-official options (SEM's ``running_sigma`` with ``sigma = "running"``) have no official name and are
left untouched.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

from torch import Tensor, nn

from hashkit.errors import CheckpointError
from hashkit.weights_file import read_weights

_HEAD = re.compile(r"^(W_G|W_L\d+)$")


def hashkit_name(official: str, attention_index: int = 0) -> str | None:
    """The hashkit model name of an official state-dict name, or ``None`` when it has none."""
    name = official.removeprefix("module.")
    if name.startswith("backbone."):
        return name
    if name.startswith(("refine_global.", "refine_local.")):
        return "aggregation." + name
    if name.startswith("attention.layer4."):
        return f"attention.{attention_index}.trunk." + name[len("attention.layer4."):]
    match = re.match(r"^attention\.feature(\d+)\.(.*)$", name)
    if match:
        return f"attention.{attention_index}.heads.{int(match.group(1)) - 1}.{match.group(2)}"
    if _HEAD.match(name):
        return "hash_head." + name
    return None


def official_name(hashkit: str, attention_index: int = 0) -> str | None:
    """The official state-dict name of a hashkit model name, or ``None`` when it has none."""
    if hashkit.startswith("backbone."):
        return hashkit
    if hashkit.startswith(("aggregation.refine_global.", "aggregation.refine_local.")):
        return hashkit[len("aggregation."):]
    prefix = f"attention.{attention_index}."
    if hashkit.startswith(prefix + "trunk."):
        return "attention.layer4." + hashkit[len(prefix + "trunk."):]
    match = re.match(rf"^{re.escape(prefix)}heads\.(\d+)\.(.*)$", hashkit)
    if match:
        return f"attention.feature{int(match.group(1)) + 1}.{match.group(2)}"
    if hashkit.startswith("hash_head.") and _HEAD.match(hashkit[len("hash_head."):]):
        return hashkit[len("hash_head."):]
    return None


def to_official_state_dict(model: nn.Module, attention_index: int = 0) -> dict[str, Tensor]:
    """The model's state dict under the official names (keys without an official name are left out)."""
    out = {}
    for key, value in model.state_dict().items():
        name = official_name(key, attention_index)
        if name is not None:
            out[name] = value
    return out


def load_official_checkpoint(model: nn.Module, source: str | Path | Mapping[str, Tensor],
                             attention_index: int = 0) -> nn.Module:
    """Load an official SEMICON ``model.pth`` (path or state dict) into a hashkit SEMICON model, strictly.

    Every official key must map onto a model key of the same shape and every model key with an official
    name must be present; otherwise :class:`~hashkit.errors.CheckpointError` names the first offenders.
    """
    where = str(source) if isinstance(source, (str, Path)) else "<state dict>"
    state = (read_weights(source, "official SEMICON checkpoint", " with weights_only=True (SEMICON_train.py saves "
                          "model.state_dict(), which loads)") if isinstance(source, (str, Path)) else dict(source))
    own = model.state_dict()
    mapped: dict[str, Tensor] = {}
    unknown = []
    for key, value in state.items():
        name = hashkit_name(key, attention_index)
        if name is None or name not in own:
            unknown.append(key)
            continue
        if tuple(own[name].shape) != tuple(value.shape):
            raise CheckpointError(f"{where}: {key} has shape {tuple(value.shape)}, the hashkit model's {name} has "
                                  f"{tuple(own[name].shape)} (same code length and backbone?)")
        mapped[name] = value
    expected = {k for k in own if official_name(k, attention_index) is not None}
    missing = sorted(expected - set(mapped))
    if unknown or missing:
        raise CheckpointError(f"{where}: official keys without a hashkit counterpart {unknown[:5]}"
                              f"{' ...' if len(unknown) > 5 else ''}; model keys missing from the checkpoint "
                              f"{missing[:5]}{' ...' if len(missing) > 5 else ''}")
    model.load_state_dict(mapped, strict=False)
    return model
