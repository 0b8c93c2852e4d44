"""Loading a state dict written under another model's names (a reference implementation's checkpoint) into a
hashkit model through a name map, strictly. Used by ``semicon_compat`` and ``dsh_compat``."""

from __future__ import annotations

from typing import Callable, Mapping

from torch import Tensor, nn

from hashkit.errors import CheckpointError


def load_name_mapped(model: nn.Module, state: Mapping[str, Tensor], to_model: Callable[[str], str | None],
                     from_model: Callable[[str], str | None], where: str, label: str,
                     skip: Callable[[str], bool] = lambda key: False) -> nn.Module:
    """Copy ``state`` into ``model``: every key (unless ``skip``) must map (``to_model``) onto a model key of the
    same shape, and every model key with a foreign name (``from_model``) must be present; otherwise a
    :class:`~hashkit.errors.CheckpointError` naming ``where``, ``label`` and the first offenders."""
    own = model.state_dict()
    mapped: dict[str, Tensor] = {}
    unknown = []
    for key, value in state.items():
        if skip(key):
            continue
        name = to_model(key)
        if name is None or name not in own:
            unknown.append(key)
            continue
        if tuple(own[name].shape) != tuple(value.shape):
            raise CheckpointError(f"{where}: {key} has shape {tuple(value.shape)}, the hashkit model's {name} has "
                                  f"{tuple(own[name].shape)} (same code length, number of maps and classes?)")
        mapped[name] = value
    expected = {k for k in own if from_model(k) is not None}
    missing = sorted(expected - set(mapped))
    if unknown or missing:
        raise CheckpointError(f"{where}: {label} keys without a hashkit counterpart {unknown[:5]}"
                              f"{' ...' if len(unknown) > 5 else ''}; model keys missing from the checkpoint "
                              f"{missing[:5]}{' ...' if len(missing) > 5 else ''}")
    model.load_state_dict(mapped, strict=False)
    return model
