"""Reading a weights file from outside (pretrained backbones, official checkpoints) without unpickling code.

``.safetensors`` files are read with safetensors; anything else with ``torch.load(weights_only=True)``,
which only rebuilds tensors and plain containers. A ``{"state_dict": {...}}`` wrapper is unwrapped and a
``module.`` prefix (``nn.DataParallel``) removed from the names.

Components that load pretrained weights skip them when :func:`weights_wanted` is false: ``hashkit recipe
validate`` builds every model on the meta device (shapes only), without reading weight files.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from hashkit.errors import CheckpointError


def weights_wanted() -> bool:
    """False while a model is being built on the meta device (``recipe validate``): skip loading weights."""
    return torch.get_default_device().type != "meta"


def read_weights(path: str | Path, what: str = "weights file", hint: str = "") -> dict[str, Tensor]:
    """The flat ``name -> tensor`` dict in ``path``; a :class:`CheckpointError` naming ``what`` and the path
    when it is missing, unreadable or not a flat tensor dict (``hint`` is appended to a read error)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad weights file
        raise CheckpointError(f"cannot read {what} {path}{hint}: {exc}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{what} {path} does not hold a flat state dict of tensors")
    return {str(k).removeprefix("module."): v for k, v in state.items()}
