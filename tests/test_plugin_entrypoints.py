"""Entry-point discovery of third-party plugins, for real: the packages are pip-installed into temp dirs and
hashkit runs in a subprocess with them on its path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGES = Path(__file__).parent / "plugin_packages"


@pytest.fixture(scope="module")
def site_dirs(tmp_path_factory):
    dirs = {}
    for name in ("example", "broken", "duplicate", "hostile"):
        target = tmp_path_factory.mktemp(f"site_{name}")
        source = tmp_path_factory.mktemp(f"src_{name}") / name  # setuptools writes build/ beside the sources
        shutil.copytree(PACKAGES / name, source)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
             "--target", str(target), str(source)],
            check=True, capture_output=True, text=True,
        )
        dirs[name] = target
    return dirs


def run_hashkit(args, paths, **env_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HASHKIT_")}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in paths)
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-m", "hashkit.cli.main", *args], capture_output=True, text=True, env=env)


def plugin_rows(result):
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)}


def test_third_party_plugin_is_discovered_through_its_entry_point(site_dirs):
    rows = plugin_rows(run_hashkit(["plugins", "--json"], [site_dirs["example"]]))
    ex = rows["example"]
    assert ex["builtin"] is False
    assert ex["distribution"] == "hashkit-example-plugin" and ex["version"] == "1.2.3"
    assert ex["components"] == ["loss:pairwise_margin", "attention:mixed_channels"]
    assert rows["backbones"]["builtin"] is True
    comps = json.loads(run_hashkit(["components", "loss", "--json"], [site_dirs["example"]]).stdout)
    entry = {c["name"]: c for c in comps["loss"]}["pairwise_margin"]
    assert entry["plugin"] == "example"
    assert entry["parameters"][0]["name"] == "margin" and entry["parameters"][0]["default"] == 0.5


def test_autoload_switch_skips_third_party_plugins(site_dirs):
    rows = plugin_rows(run_hashkit(["plugins", "--json"], [site_dirs["example"]], HASHKIT_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert "example" not in rows
    assert "backbones" in rows  # built-ins always load


def test_allowlist_loads_only_named_plugins(site_dirs):
    paths = [site_dirs["example"], site_dirs["broken"]]
    rows = plugin_rows(run_hashkit(["plugins", "--json"], paths, HASHKIT_PLUGINS="hashkit-example-plugin"))
    assert "example" in rows and "broken" not in rows
    rows = plugin_rows(run_hashkit(["plugins", "--json"], paths, HASHKIT_PLUGINS="broken"))
    assert "broken" in rows and "example" not in rows
    rows = plugin_rows(run_hashkit(["plugins", "--json"], paths, HASHKIT_PLUGINS=""))
    assert "broken" not in rows and "example" not in rows and "backbones" in rows


def test_broken_plugin_is_reported_and_does_not_stop_the_others(site_dirs):
    result = run_hashkit(["plugins", "--json"], [site_dirs["broken"], site_dirs["example"]])
    rows = plugin_rows(result)
    assert "this plugin is broken on purpose" in rows["broken"]["error"]
    assert rows["broken"]["components"] == []
    assert rows["example"]["error"] is None and "loss:pairwise_margin" in rows["example"]["components"]
    assert "plugin 'broken' failed to load" in result.stderr
    text = run_hashkit(["plugins"], [site_dirs["broken"]])
    assert "FAILED: RuntimeError: this plugin is broken on purpose" in text.stdout


def test_strict_mode_raises_on_a_broken_plugin(site_dirs):
    result = run_hashkit(["plugins"], [site_dirs["broken"]], HASHKIT_STRICT_PLUGINS="1")
    assert result.returncode == 1
    assert "this plugin is broken on purpose" in result.stderr


def test_duplicate_name_names_both_plugins(site_dirs):
    result = run_hashkit(["components", "backbone"], [site_dirs["duplicate"]])
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert "tiny_cnn" in line and "'backbones'" in line and "'duplicate'" in line


def test_third_party_loss_is_usable_from_a_recipe(site_dirs, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        'code_lengths = [8]\n[model.backbone]\nname = "tiny_cnn"\n[model.aggregation]\nname = "gap"\n'
        '[model.hash_head]\nname = "linear"\n[[losses]]\nname = "pairwise_margin"\nmargin = 0.25\n'
    )
    ok = run_hashkit(["recipe", "validate", str(recipe)], [site_dirs["example"]])
    assert ok.returncode == 0, ok.stderr
    missing = run_hashkit(["recipe", "validate", str(recipe)], [site_dirs["example"]], HASHKIT_DISABLE_PLUGIN_AUTOLOAD="1")
    assert missing.returncode == 2 and "unknown loss 'pairwise_margin'" in missing.stderr


def test_a_plugin_cannot_end_the_process_while_loading(site_dirs):
    """sys.exit(0) at import and KeyboardInterrupt from the hook are reported as broken plugins; the command
    runs to its end (it used to exit 0 printing nothing, or 130)."""
    paths = [site_dirs["hostile"], site_dirs["example"]]
    result = run_hashkit(["plugins", "--json"], paths)
    rows = plugin_rows(result)
    assert rows["exits"]["error"] == "SystemExit: 0" and rows["exits"]["components"] == []
    assert rows["interrupts"]["error"] == "KeyboardInterrupt"
    assert rows["example"]["error"] is None and "loss:pairwise_margin" in rows["example"]["components"]
    assert "plugin 'exits' failed to load" in result.stderr and "plugin 'interrupts' failed" in result.stderr


def test_strict_mode_fails_loudly_on_a_plugin_that_exits(site_dirs):
    result = run_hashkit(["plugins"], [site_dirs["hostile"]], HASHKIT_STRICT_PLUGINS="1")
    assert result.returncode == 1 and result.stdout == ""
    assert "plugin 'exits' (hashkit_exit_plugin) raised SystemExit(0) while loading" in result.stderr


def test_third_party_component_nests_a_builtin_from_a_recipe(site_dirs, tmp_path):
    """The example plugin's attention holds a channel interaction chosen in the recipe (built-in icon)."""
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        'code_lengths = [8]\n[model.backbone]\nname = "tiny_cnn"\nwidth = 4\n'
        '[[model.attention]]\nname = "mixed_channels"\nmixer = { name = "icon", residual = "aligned" }\n'
        '[model.aggregation]\nname = "gap"\n[model.hash_head]\nname = "linear"\n'
    )
    shown = run_hashkit(["recipe", "show", str(recipe)], [site_dirs["example"]])
    assert shown.returncode == 0, shown.stderr
    row = next(line for line in shown.stdout.splitlines() if line.startswith("attention[0]")).split()
    # 32 channels at stage4 of width 4: G = 16 groups of D = 2; icon: BN 2*32 + qkv 96*2+96 + qkv2 96*16+96
    assert row[1:] == ["mixed_channels", f"{2 * 32 + (96 * 2 + 96) + (96 * 16 + 96):,}"]
