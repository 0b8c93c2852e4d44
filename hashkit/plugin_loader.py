"""Discovering and loading plugins into a :class:`~hashkit.registry.Registry`.

Every plugin, built-in or third-party, is an entry point in the ``hashkit`` group naming a module that
implements :func:`hashkit.hookspecs.hashkit_register`. Entry points of the ``hashkit`` distribution itself
are the built-ins (the ``plugins/`` directory); all others are third-party.

Environment switches:

- ``HASHKIT_DISABLE_PLUGIN_AUTOLOAD=1``: load built-ins only.
- ``HASHKIT_PLUGINS=a,b``: load only these third-party plugins (entry-point or distribution names); an empty
  value loads none.
- ``HASHKIT_STRICT_PLUGINS=1``: a plugin that fails to load raises instead of being reported and skipped.
- ``HASHKIT_TRACE_PLUGINS=1``: log every hook call to stderr.

A third-party plugin cannot end the process while it loads: ``SystemExit`` (``sys.exit()`` at import),
``KeyboardInterrupt`` raised by the plugin itself and every other exception are reported as a broken plugin
and the others load normally. A real Ctrl-C pressed during loading still interrupts (it is told apart from a
raised ``KeyboardInterrupt`` by a SIGINT handler installed while loading). In strict mode the failure
raises instead; a ``SystemExit`` or ``KeyboardInterrupt`` of the plugin is then re-raised as
:class:`PluginLoadError`, so the command fails loudly instead of exiting quietly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import traceback
from typing import Any, Iterator

import pluggy

from hashkit import hookspecs
from hashkit.errors import DuplicateComponentError, HashkitError
from hashkit.registry import PluginRecord, Registry

ENTRY_POINT_GROUP = "hashkit"
BUILTIN_DISTRIBUTION = "hashkit"

class PluginLoadError(RuntimeError):
    """Strict mode: a plugin ended its own loading with ``SystemExit`` or ``KeyboardInterrupt``."""


#: plugin objects added from Python with :func:`add_plugin` (loaded after the entry points)
_extra_plugins: list[tuple[str, Any]] = []


def add_plugin(plugin: Any, name: str | None = None) -> None:
    """Register a plugin object (module or instance with a ``hashkit_register`` hookimpl) from Python.

    It is loaded with the entry-point plugins; if the registry is already loaded, it is reloaded.
    """
    from hashkit.registry import reset_registry

    _extra_plugins.append((name or getattr(plugin, "__name__", type(plugin).__name__), plugin))
    reset_registry()


def remove_plugin(name: str) -> None:
    from hashkit.registry import reset_registry

    _extra_plugins[:] = [(n, p) for n, p in _extra_plugins if n != name]
    reset_registry()


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _allowlist() -> set[str] | None:
    value = os.environ.get("HASHKIT_PLUGINS")
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    if _env_flag("HASHKIT_TRACE_PLUGINS"):
        def before(hook_name, hook_impls, kwargs):
            print(f"[hashkit] calling {hook_name} on {[i.plugin_name for i in hook_impls]}", file=sys.stderr)

        def after(outcome, hook_name, hook_impls, kwargs):
            print(f"[hashkit] {hook_name} done", file=sys.stderr)

        pm.add_hookcall_monitoring(before, after)
    return pm


def _entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    eps = list(entry_points(group=ENTRY_POINT_GROUP))
    seen: set[tuple[str, str]] = set()
    unique = []
    for ep in eps:  # the same distribution can appear twice on odd sys.path setups
        key = (ep.name, ep.value)
        if key not in seen:
            seen.add(key)
            unique.append(ep)
    return sorted(unique, key=lambda ep: (_dist_name(ep) != BUILTIN_DISTRIBUTION, ep.name))


def _dist_name(ep: Any) -> str | None:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else None


def _dist_version(ep: Any) -> str | None:
    dist = getattr(ep, "dist", None)
    return dist.version if dist is not None else None


@contextlib.contextmanager
def _user_interrupts() -> Iterator[list[bool]]:
    """While loading, note whether SIGINT really arrived (a real Ctrl-C) before raising KeyboardInterrupt.

    The yielded list holds one flag; it stays False when a plugin raises ``KeyboardInterrupt`` itself. Outside
    the main thread (no signal handlers there) every ``KeyboardInterrupt`` counts as the user's.
    """
    flag = [False]
    if threading.current_thread() is not threading.main_thread():
        flag[0] = True
        yield flag
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        flag[0] = True
        if callable(previous):
            previous(signum, frame)
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGINT, handler)
    except (ValueError, OSError):  # pragma: no cover - embedded interpreters without signals
        flag[0] = True
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def load_plugins(registry: Registry) -> None:
    """Load built-in, entry-point and Python-added plugins into ``registry`` (called once per registry)."""
    strict = _env_flag("HASHKIT_STRICT_PLUGINS")
    autoload = not _env_flag("HASHKIT_DISABLE_PLUGIN_AUTOLOAD")
    allow = _allowlist()
    pm = make_plugin_manager()

    candidates: list[tuple[str, str, str | None, str | None, bool, Any]] = []
    for ep in _entry_points():
        dist = _dist_name(ep)
        builtin = dist == BUILTIN_DISTRIBUTION
        if not builtin:
            if not autoload:
                continue
            if allow is not None and ep.name not in allow and (dist or "") not in allow:
                continue
        candidates.append((ep.name, ep.value, dist, _dist_version(ep), builtin, ep))
    for name, plugin in _extra_plugins:
        candidates.append((name, getattr(plugin, "__name__", repr(plugin)), None, None, False, plugin))

    with _user_interrupts() as interrupted:
        for name, module, dist, version, builtin, source in candidates:
            _load_one(registry, pm, name, module, dist, version, builtin, source, strict, interrupted)

    if not any(rec.builtin for rec in registry.plugins):
        raise HashkitError(
            "no built-in hashkit plugins were found: hashkit is not installed as a distribution "
            "(run `pip install -e .` in the repository)"
        )


def _load_one(registry: Registry, pm: pluggy.PluginManager, name: str, module: str, dist: str | None,
              version: str | None, builtin: bool, source: Any, strict: bool, interrupted: list[bool]) -> None:
    """Load one plugin; a third-party failure of any kind is recorded and reported, not propagated."""
    components: list[tuple[str, str]] = []

    def register(kind, comp_name, factory, config=None, *, description=None, example=None,
                 _plugin=name, _acc=components):
        registry.add(kind, comp_name, factory, config=config, plugin=_plugin, description=description,
                     example=example)
        _acc.append((kind, comp_name))

    error = None
    try:
        plugin = source.load() if hasattr(source, "load") and hasattr(source, "group") else source
        pm.register(plugin, name=name)
        # this plugin's hook alone, through pluggy's hook caller (so HASHKIT_TRACE_PLUGINS sees the call)
        others = [p for p in pm.get_plugins() if p is not plugin]
        pm.subset_hook_caller("hashkit_register", remove_plugins=others)(register=register)
    except DuplicateComponentError:
        raise
    except BaseException as exc:  # noqa: BLE001 - a broken plugin must neither stop the others nor exit
        if isinstance(exc, KeyboardInterrupt) and interrupted[0]:
            raise  # the user pressed Ctrl-C
        if strict or builtin:
            if isinstance(exc, Exception):
                raise
            raise PluginLoadError(f"plugin {name!r} ({module}) raised {type(exc).__name__}"
                                  f"({exc}) while loading") from exc
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        # roll back what this plugin managed to register before failing
        for kind, comp_name in components:
            registry._entries[kind].pop(comp_name, None)
        components = []
        print(f"hashkit: plugin {name!r} failed to load and was skipped: {error}", file=sys.stderr)
        if _env_flag("HASHKIT_TRACE_PLUGINS"):
            traceback.print_exc()
    registry.plugins.append(
        PluginRecord(
            name=name,
            module=module,
            distribution=dist,
            version=version,
            builtin=builtin,
            components=tuple(components),
            error=error,
        )
    )
