"""The pluggy hook specification that every hashkit plugin implements.

A plugin is a module (or object) with a function marked ``@hashkit.hookimpl``::

    import hashkit

    @hashkit.hookimpl
    def hashkit_register(register):
        register("loss", "my_loss", MyLoss, config=MyLossConfig)

Built-in components in ``plugins/`` use exactly this hook, reached through the ``hashkit`` entry-point group
like any third-party package.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "hashkit"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def hashkit_register(register):  # pragma: no cover - specification only
    """Register components by calling ``register(kind, name, factory, config=ConfigClass)``.

    - ``kind``: one of :data:`hashkit.interfaces.KINDS`.
    - ``name``: unique per kind across all plugins (a duplicate is an error naming both plugins).
    - ``factory``: ``factory(config, ctx)`` returning the component, where ``config`` is an instance of
      ``ConfigClass`` and ``ctx`` a :class:`hashkit.interfaces.BuildContext`.
    - ``config``: a frozen attrs class with typed, defaulted fields (the component's parameters).
    - ``description``: optional keyword, one line; defaults to the first line of the factory's docstring.
    - ``example``: optional keyword, ``() -> hashkit.testing.ComponentExample`` giving a tiny config, build
      context and inputs for the registry-parametrised conformance tests (a default exists per kind).
    """
