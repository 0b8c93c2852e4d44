"""Reference state-dict names <-> hashkit names, and strict one-to-one loading of reference checkpoints.

A :class:`NameMap` lists rules ``(reference, hashkit)``: a name ending in ``.`` is a prefix (the rest of the
key is kept), any other name an exact key. Hashkit names start with a *target* label (``model.`` for the
:class:`~hashkit.model.HashingModel`, or a label the caller gives a loss module that holds reference
parameters, e.g. ``balance.`` for CHN's α). Rules are tried in order (specific before generic), in both
directions.

:func:`load_reference_state` is strict: every reference key must map onto a hashkit key of the same shape
(keys listed in ``ignore`` are accepted and dropped, as documented per method), and every hashkit key that
has a reference name must be present; otherwise :class:`~hashkit.errors.CheckpointError` names the first
offenders. Keys the reference does not have (hashkit-only buffers) are left as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import attrs
from torch import Tensor, nn

from hashkit.errors import CheckpointError
from hashkit.weights_file import read_weights


def _match(key: str, pattern: str) -> bool:
    return key.startswith(pattern) if pattern.endswith(".") else key == pattern


@attrs.frozen
class NameMap:
    #: (reference name or prefix, hashkit name or prefix), in matching order
    rules: tuple[tuple[str, str], ...]
    #: reference names or prefixes that load and are dropped (e.g. an unused classifier)
    ignore: tuple[str, ...] = ()
    #: reference key endings that load and are dropped (e.g. thop's counters)
    ignore_suffixes: tuple[str, ...] = ()
    #: wrapper prefixes removed from reference keys first (nn.DataParallel's ``module.``, Lightning's ``model.``)
    strip_prefixes: tuple[str, ...] = ("module.",)

    def clean(self, key: str) -> str:
        for prefix in self.strip_prefixes:
            key = key.removeprefix(prefix)
        return key

    def ignored(self, key: str) -> bool:
        if any(_match(key, p) for p in self.ignore):
            return True
        return bool(self.ignore_suffixes) and key.endswith(self.ignore_suffixes)

    def hashkit_name(self, reference: str) -> str | None:
        for ref, own in self.rules:
            if _match(reference, ref):
                return own + reference[len(ref):] if ref.endswith(".") else own
        return None

    def reference_name(self, hashkit: str) -> str | None:
        for ref, own in self.rules:
            if _match(hashkit, own):
                return ref + hashkit[len(own):] if own.endswith(".") else ref
        return None


def read_checkpoint(source: str | Path | Mapping[str, Tensor], what: str) -> tuple[dict[str, Tensor], str]:
    """A flat tensor dict from a path (``.pth`` read with ``weights_only=True``, or ``.safetensors``; a
    ``{"state_dict": ...}`` wrapper as PyTorch Lightning writes is unwrapped) or from a mapping."""
    if not isinstance(source, (str, Path)):
        return dict(source), "<state dict>"
    return read_weights(source, what=f"{what} checkpoint"), str(source)


def _own_state(targets: Mapping[str, nn.Module]) -> dict[str, Tensor]:
    return {f"{label}.{k}": v for label, module in targets.items() for k, v in module.state_dict().items()}


def to_reference_state(targets: Mapping[str, nn.Module], names: NameMap) -> dict[str, Tensor]:
    """The targets' state under the reference names (keys without a reference name are left out)."""
    out = {}
    for key, value in _own_state(targets).items():
        name = names.reference_name(key)
        if name is not None:
            out[name] = value
    return out


def load_reference_state(targets: Mapping[str, nn.Module], source: str | Path | Mapping[str, Tensor],
                         names: NameMap, what: str) -> list[str]:
    """Load a reference checkpoint into ``targets`` (``{label: module}``) strictly; returns the ignored keys."""
    state, where = read_checkpoint(source, what)
    own = _own_state(targets)
    mapped: dict[str, Tensor] = {}
    unknown, ignored = [], []
    for raw_key, value in state.items():
        key = names.clean(raw_key)
        if names.ignored(key):
            ignored.append(raw_key)
            continue
        name = names.hashkit_name(key)
        if name is None or name not in own:
            unknown.append(raw_key)
            continue
        if name in mapped:
            raise CheckpointError(f"{where}: two keys map onto {name} (the last is {raw_key})")
        if tuple(own[name].shape) != tuple(value.shape):
            raise CheckpointError(f"{where}: {raw_key} has shape {tuple(value.shape)}, the hashkit {what} model's "
                                  f"{name} has {tuple(own[name].shape)} (same code length and number of classes?)")
        mapped[name] = value
    missing = sorted(f"{names.reference_name(k)} (hashkit {k})" for k in own
                     if names.reference_name(k) is not None and k not in mapped)
    if unknown or missing:
        raise CheckpointError(f"{where}: {what} keys without a hashkit counterpart {unknown[:5]}"
                              f"{' ...' if len(unknown) > 5 else ''}; {what} keys missing from the checkpoint "
                              f"{missing[:5]}{' ...' if len(missing) > 5 else ''}")
    for label, module in targets.items():
        prefix = f"{label}."
        module.load_state_dict({k[len(prefix):]: v for k, v in mapped.items() if k.startswith(prefix)}, strict=False)
    return ignored


def find_loss(losses: nn.Module | None, loss_type: type, what: str) -> nn.Module:
    """The single loss of ``loss_type`` in a recipe's loss set (``Built.losses``) or the loss itself."""
    if isinstance(losses, loss_type):
        return losses
    found = [m for m in (losses.modules() if losses is not None else ()) if isinstance(m, loss_type)]
    if len(found) != 1:
        raise CheckpointError(f"{what} checkpoints hold parameters of the {loss_type.__name__} loss: pass the "
                              f"recipe's losses (found {len(found)} such losses)")
    return found[0]
