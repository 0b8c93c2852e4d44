"""Registry behaviour: lazy single load, unknown names with close matches, duplicates, config isolation."""

from __future__ import annotations

import subprocess
import sys
import types

import attrs
import pytest

import hashkit
from hashkit.assemble import make_component
from hashkit.errors import DuplicateComponentError, HashkitError, UnknownComponentError
from hashkit.interfaces.kinds import KINDS
from hashkit.plugin_loader import add_plugin, remove_plugin
from hashkit.registry import Registry, get_registry


def _plugin(name, register_fn):
    mod = types.ModuleType(name)
    mod.hashkit_register = hashkit.hookimpl(register_fn)
    return mod


def test_importing_hashkit_loads_neither_torch_nor_plugins():
    code = ("import sys, hashkit, hashkit.registry as r; "
            "print('torch' in sys.modules, r._registry is None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


def test_registry_loads_once():
    assert get_registry() is get_registry()


def test_unknown_name_lists_closest_matches():
    with pytest.raises(UnknownComponentError) as info:
        get_registry().get("backbone", "tiny_cn")
    msg = str(info.value)
    assert "unknown backbone 'tiny_cn'" in msg and "closest: tiny_cnn" in msg and "available:" in msg


def test_every_kind_is_a_registry_section_with_built_ins():
    reg = get_registry()
    for kind in KINDS:
        names = reg.names(kind)
        assert names == sorted(names) and names, f"no built-in {kind}"
        assert all(reg.get(kind, n).kind == kind and (kind, n) in reg for n in names)
        assert [e.name for e in reg.entries(kind)] == names
    with pytest.raises(UnknownComponentError, match="unknown component kind 'losses'"):
        reg.get("losses", "hhf")


def test_duplicate_from_python_plugin_names_both():
    plugin = _plugin("dup", lambda register: register("hash_head", "linear", lambda c, ctx: None))
    add_plugin(plugin, "dup_plugin")
    try:
        with pytest.raises(DuplicateComponentError) as info:
            get_registry()
        assert "'heads'" in str(info.value) and "'dup_plugin'" in str(info.value)
    finally:
        remove_plugin("dup_plugin")
    get_registry()  # recovers


def test_registration_validates_what_plugins_register():
    reg = Registry()
    with pytest.raises(HashkitError, match="unknown kind 'losss'.*did you mean 'loss'"):
        reg.add("losss", "x", lambda c, ctx: None)
    with pytest.raises(HashkitError, match="non-callable factory"):
        reg.add("loss", "x", 3)
    with pytest.raises(HashkitError, match="not an attrs class"):
        reg.add("loss", "x", lambda c, ctx: None, config=dict)

    @attrs.frozen
    class NeedsValue:
        value: int

    with pytest.raises(HashkitError, match="cannot be built with its defaults"):
        reg.add("loss", "x", lambda c, ctx: None, config=NeedsValue)


def test_python_added_plugin_is_usable_and_listed():
    @attrs.frozen
    class Cfg:
        width: int = 3

    plugin = _plugin("extra", lambda register: register("backbone", "from_python", lambda c, ctx: c, config=Cfg))
    add_plugin(plugin, "extra_plugin")
    try:
        reg = get_registry()
        assert reg.get("backbone", "from_python").plugin == "extra_plugin"
        rec = {p.name: p for p in reg.plugins}["extra_plugin"]
        assert rec.components == (("backbone", "from_python"),) and not rec.builtin
    finally:
        remove_plugin("extra_plugin")
    assert ("backbone", "from_python") not in get_registry()


def test_building_twice_does_not_share_config():
    a = make_component("backbone", "tiny_cnn", {"width": 4})
    b = make_component("backbone", "tiny_cnn", {"width": 8})
    c = make_component("backbone", "tiny_cnn")
    assert a.stage_specs["stage1"].channels == 4
    assert b.stage_specs["stage1"].channels == 8
    assert c.stage_specs["stage1"].channels == 16  # the default is untouched


def test_trace_switch_logs_every_hook_call(monkeypatch, capsys):
    """HASHKIT_TRACE_PLUGINS goes through pluggy's hook-call monitoring, so each plugin's call is logged."""
    plugin = _plugin("traced", lambda register: register("loss", "traced_loss", lambda c, ctx: None))
    monkeypatch.setenv("HASHKIT_TRACE_PLUGINS", "1")
    add_plugin(plugin, "traced_plugin")
    try:
        reg = get_registry()
        err = capsys.readouterr().err
        calls = [line for line in err.splitlines() if line.startswith("[hashkit] calling hashkit_register")]
        assert len(calls) == len(reg.plugins) and any("'traced_plugin'" in line for line in calls)
        assert "[hashkit] calling hashkit_register on ['backbones']" in err
    finally:
        monkeypatch.delenv("HASHKIT_TRACE_PLUGINS")
        remove_plugin("traced_plugin")
    get_registry()
    assert "[hashkit]" not in capsys.readouterr().err
