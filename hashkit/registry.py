"""The component registry: ``(kind, name) -> Entry``, filled only by plugin hooks.

Nothing registers at import time. The first access to the registry loads the plugins (once, guarded
against re-entry) through :mod:`hashkit.plugin_loader`; afterwards lookups are plain dict reads.
"""

from __future__ import annotations

import difflib
import threading
from typing import Any, Callable, Iterator

import attrs

from hashkit.errors import DuplicateComponentError, HashkitError, UnknownComponentError, shorten
from hashkit.interfaces.kinds import KINDS


@attrs.frozen
class Entry:
    """One registered component."""

    kind: str
    name: str
    factory: Callable[..., Any]
    config: type
    plugin: str
    description: str = ""
    #: optional ``() -> hashkit.testing.ComponentExample``: a tiny context and inputs for conformance tests
    example: Callable[[], Any] | None = None


@attrs.frozen
class PluginRecord:
    """What `hashkit plugins` shows for one plugin."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    builtin: bool
    components: tuple[tuple[str, str], ...] = ()
    error: str | None = None


class Registry:
    """Holds entries by kind and name. Use :func:`get_registry` for the process-wide instance."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        self.plugins: list[PluginRecord] = []

    # -- registration (called from hooks) -------------------------------------------------------
    def add(
        self,
        kind: str,
        name: str,
        factory: Callable[..., Any],
        *,
        config: type | None = None,
        plugin: str = "<direct>",
        description: str | None = None,
        example: Callable[[], Any] | None = None,
    ) -> Entry:
        if kind not in self._entries:
            close = difflib.get_close_matches(kind, KINDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise HashkitError(f"plugin {plugin!r} registered unknown kind {kind!r}{hint}; kinds are {list(KINDS)}")
        if not isinstance(name, str) or not name:
            raise HashkitError(f"plugin {plugin!r} registered a {kind} with an invalid name {name!r}")
        if not callable(factory):
            raise HashkitError(f"plugin {plugin!r} registered {kind} {name!r} with a non-callable factory")
        if config is None:
            config = _EmptyConfig
        if not attrs.has(config):
            raise HashkitError(f"plugin {plugin!r} registered {kind} {name!r} with a config that is not an attrs class")
        try:
            config()
        except Exception as exc:  # noqa: BLE001 - report whatever the config raised
            raise HashkitError(
                f"plugin {plugin!r}: the config of {kind} {name!r} cannot be built with its defaults: {exc}"
            ) from exc
        existing = self._entries[kind].get(name)
        if existing is not None:
            raise DuplicateComponentError(
                f"{kind} {name!r} is registered twice: by plugin {existing.plugin!r} and by plugin {plugin!r}"
            )
        if description is None:
            doc = (getattr(factory, "__doc__", None) or "").strip()
            description = doc.splitlines()[0] if doc else ""
        if example is not None and not callable(example):
            raise HashkitError(f"plugin {plugin!r} registered {kind} {name!r} with a non-callable example")
        entry = Entry(kind, name, factory, config, plugin, description, example)
        self._entries[kind][name] = entry
        return entry

    # -- lookup ---------------------------------------------------------------------------------
    def get(self, kind: str, name: str) -> Entry:
        if kind not in self._entries:
            raise UnknownComponentError(f"unknown component kind {kind!r}; kinds are {list(KINDS)}")
        try:
            return self._entries[kind][name]
        except KeyError:
            raise UnknownComponentError(unknown_name_message(kind, name, sorted(self._entries[kind]))) from None

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[kind])

    def entries(self, kind: str | None = None) -> Iterator[Entry]:
        kinds = KINDS if kind is None else (kind,)
        for k in kinds:
            for name in sorted(self._entries[k]):
                yield self._entries[k][name]

    def __contains__(self, key: tuple[str, str]) -> bool:
        kind, name = key
        return name in self._entries.get(kind, {})


@attrs.frozen
class _EmptyConfig:
    """A component without parameters."""


def unknown_name_message(kind: str, name: str, available: list[str]) -> str:
    close = difflib.get_close_matches(name, available, n=3, cutoff=0.5) if len(name) < 200 else []
    msg = f"unknown {kind} {shorten(name)}"
    if close:
        msg += f"; closest: {', '.join(close)}"
    msg += f"; available: {', '.join(available) if available else '(none registered)'}"
    return msg


_registry: Registry | None = None
_lock = threading.RLock()
_loading = False


def get_registry() -> Registry:
    """The process-wide registry, loading the plugins on first access (once)."""
    global _registry, _loading
    if _registry is not None:
        return _registry
    with _lock:
        if _registry is not None:
            return _registry
        if _loading:
            raise HashkitError("the registry was accessed while plugins were still loading (a plugin looked up a "
                               "component inside its hashkit_register hook)")
        _loading = True
        try:
            from hashkit.plugin_loader import load_plugins

            registry = Registry()
            load_plugins(registry)
            _registry = registry
        finally:
            _loading = False
    return _registry


def reset_registry() -> None:
    """Forget the loaded registry so the next access loads the plugins again (tests, env changes)."""
    global _registry
    with _lock:
        _registry = None
