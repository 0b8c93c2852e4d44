"""Building one registered component (and, through ``ctx.build``, the components nested in it).

``make_component(kind, name, params, ctx)`` looks the component up in the registry, validates ``params``
against its config class (nested component tables included) and calls its factory. ``build_ref`` does the
same for a :class:`~hashkit.interfaces.ComponentRef` from a recipe, naming the recipe key on a contract error.
"""

from __future__ import annotations

from typing import Any, Mapping

from hashkit.errors import ContractError
from hashkit.interfaces.build_context import BuildContext
from hashkit.interfaces.component_ref import ComponentRef
from hashkit.recipe.coerce import build_config
from hashkit.registry import get_registry


def built_for(ctx: BuildContext) -> dict[str, Any]:
    """What a component was built to receive, as plain numbers (kept on the component as ``built_for``, so
    :class:`~hashkit.HashingModel` can check components made separately against each other)."""
    return {
        "in_channels": ctx.in_spec.channels if ctx.in_spec is not None else None,
        "stages": {name: spec.channels for name, spec in (ctx.stages or {}).items()},
        "num_maps": ctx.num_maps,
        "descriptor_dims": dict(ctx.descriptor_dims or {}),
    }


def make_component(kind: str, name: str, params: Mapping[str, Any] | Any = None, ctx: BuildContext | None = None):
    """Build one registered component from ``params`` (a dict, an instance of its config class, or ``None``
    for its defaults). The component gets ``registered_name`` and ``built_for`` (see :func:`built_for`)."""
    entry = get_registry().get(kind, name)
    if isinstance(params, entry.config):
        config = params
    else:
        config = build_config(entry.config, dict(params or {}), key=f"{kind}.{name}")
    ctx = ctx or BuildContext()
    obj = entry.factory(config, ctx)
    try:
        obj.registered_name = name
        obj.built_for = built_for(ctx)
    except (AttributeError, TypeError):  # objects with __slots__ or immutable results
        pass
    return obj


def build_ref(ref: ComponentRef, ctx: BuildContext):
    """Build the component ``ref`` names; a contract error is prefixed with its recipe key (and carries it as
    ``exc.key``, so the caller can name the file that set it)."""
    try:
        return make_component(ref.kind, ref.name, ref.config, ctx)
    except ContractError as exc:
        message = str(exc)
        if ref.key and message.startswith(ref.key):  # already names this key (or a key nested in it)
            raise
        error = ContractError(f"{ref.label}: {message}")
        error.key = ref.key or None
        raise error from None
