"""ComponentRef: a component chosen by name with its validated config; config fields that hold one.

A recipe chooses components by name (``[model.aggregation] name = "gap"``). A component can hold other
components the same way: its config declares a field with :func:`nested` (one component, or none) or
:func:`nested_list` (a list), naming the kind::

    @attrs.frozen
    class RefineBranchesConfig:
        stage: str = "layer4"
        interaction: ComponentRef | None = nested("channel_interaction")

The recipe writes the nested component as a table (or just its name)::

    [model.aggregation]
    name = "refine_branches"
    interaction = { name = "icon", residual = "official" }

and the loader validates it against the registered ``channel_interaction`` components exactly like a
top-level table (typed config, closest names, the defining file and the dotted key in every message). The
owning factory receives a :class:`ComponentRef` and builds the component, as many times as it needs, with
``ctx.build(cfg.interaction, in_spec=...)`` (see :class:`~hashkit.interfaces.BuildContext`): the core looks
it up in the registry and hands it a context derived from the owner's. A component never parses a raw table.

This module imports neither torch nor the registry.
"""

from __future__ import annotations

from typing import Any

import attrs

#: ``attrs`` field metadata keys used by :func:`nested` / :func:`nested_list`
NESTED_KIND = "component"
NESTED_MANY = "component_list"


@attrs.frozen
class ComponentRef:
    """A component chosen in a recipe (top-level or nested): its registered name and validated config.

    ``config`` is an instance of the component's config class; ``None`` stands for its defaults (the
    default value of a :func:`nested` field before a recipe fills it in).
    """

    kind: str
    name: str
    config: Any = None
    #: loss weight (top-level ``[[losses]]`` entries only)
    weight: float = 1.0
    #: dotted recipe key, for error messages (``model.attention[0]``, ``model.aggregation.interaction``)
    key: str = ""

    @property
    def label(self) -> str:
        """``"<key> (<kind> '<name>')"`` or ``"<kind> '<name>'"``: how errors name this component."""
        what = f"{self.kind} {self.name!r}"
        return f"{self.key} ({what})" if self.key else what


def nested(kind: str, default: str | None = None, *, doc: str = "") -> Any:
    """A config field holding one component of ``kind`` (a :class:`ComponentRef`), or ``None``.

    ``default`` is the name of a registered component used with its default parameters, or ``None``
    (the field is optional and the owner does without). Annotate the field ``ComponentRef`` (with a
    default name) or ``ComponentRef | None``.
    """
    value = None if default is None else ComponentRef(kind, default)
    return attrs.field(default=value, metadata={NESTED_KIND: kind, NESTED_MANY: False, "doc": doc})


def nested_list(kind: str, default: tuple[str, ...] = (), *, doc: str = "") -> Any:
    """A config field holding a list of components of ``kind`` (``tuple[ComponentRef, ...]``).

    ``default`` names registered components used with their default parameters (usually empty).
    """
    value = tuple(ComponentRef(kind, name) for name in default)
    return attrs.field(default=value, metadata={NESTED_KIND: kind, NESTED_MANY: True, "doc": doc})


def nested_kind(field: attrs.Attribute) -> tuple[str, bool] | None:
    """``(kind, many)`` when ``field`` was declared with :func:`nested` / :func:`nested_list`, else ``None``."""
    kind = field.metadata.get(NESTED_KIND)
    if kind is None:
        return None
    return kind, bool(field.metadata.get(NESTED_MANY, False))
