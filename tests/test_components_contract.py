"""Every registered component is built with its default config on a tiny example and checked against its
kind's contract (hashkit.testing.check_component), plus a safetensors state_dict round trip and
determinism under a seed for module components."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from hashkit.assemble import make_component
from hashkit.cli.main import main
from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext
from hashkit.interfaces.kinds import KIND, KINDS
from hashkit.registry import get_registry
from hashkit.testing import PER_IMAGE_KINDS, _resolve_example, check_component

ENTRIES = [(e.kind, e.name) for e in get_registry().entries()]


@pytest.mark.parametrize("kind,name", ENTRIES, ids=[f"{k}:{n}" for k, n in ENTRIES])
def test_component_contract(kind, name):
    check_component(kind, name)


MODULE_ENTRIES = [(k, n) for k, n in ENTRIES if KIND[k].module]


@pytest.mark.parametrize("kind,name", MODULE_ENTRIES, ids=[f"{k}:{n}" for k, n in MODULE_ENTRIES])
def test_state_dict_round_trip_and_seeded_determinism(kind, name, tmp_path):
    entry = get_registry().get(kind, name)
    ex = _resolve_example(entry)
    if ex.prepare is not None:
        pytest.skip("component needs prepared files")
    ctx = ex.ctx

    def fresh():
        torch.manual_seed(123)
        return make_component(kind, name, ex.config, ctx)

    a, b = fresh(), fresh()
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), f"{key} differs between two builds under the same seed"
    if not sa:
        return
    path = tmp_path / "state.safetensors"
    save_file({k: v.contiguous() for k, v in sa.items()}, str(path))
    loaded = load_file(str(path))
    c = make_component(kind, name, ex.config, ctx)
    c.load_state_dict(loaded)
    for key, value in c.state_dict().items():
        assert torch.equal(value, sa[key])


#: built-in components whose default config declares eval-mode batch dependence (README: search section)
DECLARED_BATCH_DEPENDENT = {("attention", "sem")}


def test_only_declared_components_may_depend_on_the_batch_in_eval_mode():
    """check_component checks every other model component; the README's search section names SEM alone."""
    from hashkit.model.capabilities import batch_dependent_components

    declared = set()
    for kind, name in ENTRIES:
        if kind in PER_IMAGE_KINDS and kind != "backbone":  # backbones are plain CNNs (and slow to build)
            ex = _resolve_example(get_registry().get(kind, name))
            if batch_dependent_components(make_component(kind, name, ex.config, ex.ctx or BuildContext())):
                declared.add((kind, name))
    assert declared == DECLARED_BATCH_DEPENDENT


def test_the_batch_independence_check_catches_batch_statistics(monkeypatch):
    from hashkit_plugins.channel_interaction.icon import ICON

    original = ICON.forward
    check_component("channel_interaction", "icon")
    monkeypatch.setattr(ICON, "forward", lambda self, x: original(self, x) - x.mean(dim=0, keepdim=True))
    with pytest.raises(AssertionError, match="differs between a batch of 2 and the image alone"):
        check_component("channel_interaction", "icon")


CONTEXT_ENTRIES = [(k, n) for k, n in ENTRIES if KIND[k].context]


@pytest.mark.parametrize("kind,name", CONTEXT_ENTRIES, ids=[f"{k}:{n}" for k, n in CONTEXT_ENTRIES])
def test_an_empty_build_context_is_a_contract_error_or_enough(kind, name):
    """A factory that lacks something from the context says so (ContractError), never an AttributeError."""
    ex = _resolve_example(get_registry().get(kind, name))
    try:
        make_component(kind, name, ex.config, BuildContext())
    except ContractError as exc:
        assert "needs" in str(exc) or "requires" in str(exc), str(exc)


def test_components_json_lists_every_kind(capsys):
    assert main(["components", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == list(KINDS)
    names = {(k, c["name"]) for k, comps in data.items() for c in comps}
    assert names == {(e.kind, e.name) for e in get_registry().entries()}
    assert set(ENTRIES) <= names  # every built-in (other tests may add plugins of their own)
    for comps in data.values():
        for comp in comps:
            assert comp["plugin"] and isinstance(comp["parameters"], list)


def test_components_unknown_kind_is_a_clean_error(capsys):
    assert main(["components", "bakbone"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "closest: backbone" in err[0]


def test_conformance_checks_survive_python_O():
    """hashkit.testing is public API: its checks raise through expect(), never a bare assert statement."""
    import ast
    import inspect

    import hashkit.testing as testing

    tree = ast.parse(inspect.getsource(testing))
    assert not [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert)]
    with pytest.raises(AssertionError, match="the message"):
        testing.expect(False, "the message")


def _checked_loss(forward, requires):
    """``check_component`` on a throw-away loss plugin with the given forward and requires."""
    import types

    import hashkit
    from hashkit.interfaces import Loss, LossResult
    from hashkit.plugin_loader import add_plugin, remove_plugin

    class Probe(Loss):
        def forward(self, inputs):
            return LossResult(value=forward(inputs))

    Probe.requires = requires
    plugin = types.ModuleType("probe")
    plugin.hashkit_register = hashkit.hookimpl(lambda register: register("loss", "probe_test", lambda c, ctx: Probe()))
    add_plugin(plugin, "probe_plugin")
    try:
        return check_component("loss", "probe_test")
    finally:
        remove_plugin("probe_plugin")


def test_loss_check_demands_a_gradient_for_every_required_input():
    # a balance on sign(codes): a value, but no gradient (GDF-Net's author term)
    with pytest.raises(AssertionError, match="no gradient"):
        _checked_loss(lambda li: torch.where(li.codes >= 0, 1.0, -1.0).sum(1).pow(2).mean(), ("codes",))
    # names the descriptor but never reads it
    with pytest.raises(AssertionError, match="does not depend on it"):
        _checked_loss(lambda li: li.codes.pow(2).mean(), ("codes", "descriptor"))
    # reads it through a detached copy only: zero gradient where one is required
    with pytest.raises(AssertionError, match="zero gradient w.r.t. 'descriptor'"):
        _checked_loss(lambda li: li.codes.pow(2).mean() + 0.0 * li.descriptor.sum(), ("codes", "descriptor"))
    _checked_loss(lambda li: li.codes.pow(2).mean() + li.descriptor.pow(2).mean(), ("codes", "descriptor", "labels"))
