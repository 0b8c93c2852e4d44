"""Loading a reference ``model.state_dict()`` of A2-Net, ExchNet, AGMH or DAHNet into the hashkit model built
from the method's recipe at the same code length, and writing one back. See :mod:`.maps` for the names."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from torch import Tensor, nn

from hashkit.errors import CheckpointError
from hashkit.weights_file import read_weights
from hashkit_plugins.dsh_compat.maps import REFERENCE_MAPS, NameMap
from hashkit_plugins.name_mapped import load_name_mapped


def _map(method: str) -> NameMap:
    if method not in REFERENCE_MAPS:
        raise CheckpointError(f"no reference name map for {method!r}; known: {sorted(REFERENCE_MAPS)}")
    return REFERENCE_MAPS[method]


def hashkit_name(method: str, reference: str, attention_index: int = 0) -> str | None:
    """The hashkit model name of a reference state-dict name, or ``None`` (dropped or unknown)."""
    return _map(method).to_hashkit(reference, attention_index)


def reference_name(method: str, hashkit: str, attention_index: int = 0) -> str | None:
    """The reference state-dict name of a hashkit model name, or ``None`` when it has none."""
    return _map(method).to_reference(hashkit, attention_index)


def to_reference_state_dict(model: nn.Module, method: str, attention_index: int = 0) -> dict[str, Tensor]:
    """The model's state dict under the reference names (keys without a reference name are left out)."""
    names = _map(method)
    out = {}
    for key, value in model.state_dict().items():
        name = names.to_reference(key, attention_index)
        if name is not None:
            out[name] = value
    return out


def load_reference_checkpoint(model: nn.Module, source: str | Path | Mapping[str, Tensor], method: str,
                              attention_index: int = 0) -> nn.Module:
    """Load a reference ``model.state_dict()`` (a path read with ``weights_only=True``, or a dict) strictly.

    Every reference key (except the map's dropped prefixes) must map onto a model key of the same shape, and
    every model key with a reference name must be present; otherwise :class:`~hashkit.errors.CheckpointError`
    names the first offenders.
    """
    names = _map(method)
    where = str(source) if isinstance(source, (str, Path)) else "<state dict>"
    state = read_weights(source, f"{method} reference checkpoint") if isinstance(source, (str, Path)) else dict(source)
    return load_name_mapped(model, state, lambda k: names.to_hashkit(k, attention_index),
                            lambda k: names.to_reference(k, attention_index), where, f"{method} reference",
                            skip=names.is_dropped)
