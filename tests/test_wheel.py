"""A built wheel, installed into a fresh virtual environment, has the built-in recipes and the commands.

No network: the wheel is built without build isolation, installed with ``--no-deps``, and the fresh venv
reaches torch and the other dependencies through a ``.pth`` file naming the directories they are installed in
for the interpreter running the tests (not the repository, not the editable install).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEPENDENCIES = ("torch", "torchvision", "torch_geometric", "numpy", "PIL", "safetensors", "pluggy", "attrs",
                "einops", "tqdm", "matplotlib")


def _run(args, **kwargs):
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert proc.returncode == 0, f"{args}: {proc.stdout[-2000:]}{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_has_the_builtin_recipes(tmp_path):
    import importlib

    source = tmp_path / "src"  # build from a copy: the checkout stays free of build/ and egg-info
    source.mkdir()
    for name in ("hashkit", "plugins", "recipes"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", str(tmp_path / "dist"), str(source)])
    wheel = next((tmp_path / "dist").glob("hashkit-*.whl"))

    venv = tmp_path / "fresh"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    dirs = sorted({str(Path(importlib.import_module(m).__file__).resolve().parents[1]) for m in DEPENDENCIES})
    (site / "_test_dependencies.pth").write_text("\n".join(dirs) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
          str(wheel)])

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(HASHKIT_DISABLE_PLUGIN_AUTOLOAD="1", OMP_NUM_THREADS="1")
    out = _run([str(python), "-c", INSTALLED], cwd=tmp_path, env=env).stdout  # one interpreter start: cheap
    where, recipe_dir = out.splitlines()[:2]
    assert str(site) in where and str(site) in recipe_dir, out  # the installed copy, not the checkout
    assert sorted(p.name for p in Path(recipe_dir).glob("*.toml")) == sorted(p.name for p in (REPO / "recipes").glob("*.toml"))
    assert "semicon-demo.toml: ok (semicon-demo" in out and "validate 0" in out
    assert 'name = "semicon-cub200"' in out and "[model.backbone]" in out and "show 0" in out  # extends resolved
    assert "baseline" in out
    script = venv / "bin" / "hashkit"  # the console script is installed for the fresh interpreter
    assert script.is_file() and script.read_text().splitlines()[0] == f"#!{python}"
    assert sysconfig.get_paths()["purelib"] not in where


INSTALLED = """
import contextlib, io, hashkit
import hashkit.recipe.toml_loader as loader
from hashkit.cli.main import build_parser, main
print(hashkit.__file__)
print(loader.builtin_recipe_dir())
print("validate", main(["recipe", "validate", "semicon-demo"]))
print("show", main(["recipe", "show", "semicon-cub200", "--no-model"]))
print(build_parser().format_help())
"""
