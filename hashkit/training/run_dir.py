"""The run directory: where one ``hashkit train`` writes everything.

Layout::

    OUT/recipe.toml                the merged recipe (after extends and --set), loadable by load_recipe
    OUT/recipe.resolved.json       every section with its defaults filled in (what actually ran)
    OUT/environment.json           versions, device, world size, plugins
    OUT/split.json                 dataset, split counts and the checksum of the query/database lists
    OUT/L{bits}/checkpoint.safetensors (+ checkpoint.json)   the last checkpoint (resume point)
    OUT/L{bits}/selected.safetensors   model (+ learned database codes) chosen by train.selection
    OUT/L{bits}/codes.safetensors      final query / database codes and labels (evaluation inputs)
    OUT/L{bits}/metrics.jsonl          one JSON object per logged step / round / evaluation
    OUT/report.json, OUT/report.txt    the evaluation report and its table

A run directory that exists and is not empty is never overwritten: pass ``resume=True`` to continue it.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import attrs

from hashkit.errors import CheckpointError
from hashkit.recipe.schema import ComponentRef, Recipe
from hashkit.atomic_io import atomic_write_text
from hashkit.recipe.toml_writer import dumps_toml

RECIPE_FILE = "recipe.toml"


def length_dir(run_dir: Path, code_length: int | None) -> Path:
    return Path(run_dir) / (f"L{code_length}" if code_length else "real")


def prepare_run_dir(run_dir: Path, *, resume: bool) -> Path:
    """Create ``run_dir`` for a new run, or check it for resuming (and remove temp files a kill left there)."""
    from hashkit.atomic_io import remove_stale_temp_files
    from hashkit.output_paths import check_output_dir

    run_dir = Path(run_dir)
    if resume:
        if not (run_dir / RECIPE_FILE).is_file():
            raise CheckpointError(f"{run_dir}: cannot resume, it is not a hashkit run directory (no {RECIPE_FILE})")
        for directory in (run_dir, *(d for d in run_dir.iterdir() if d.is_dir())):
            remove_stale_temp_files(directory)
        return run_dir
    check_output_dir(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from hashkit.atomic_io import write_error

        raise write_error(run_dir, exc) from None
    return run_dir


def started_training(run_dir: Path) -> bool:
    """Whether a run has anything worth keeping: a checkpoint or a logged training step."""
    run_dir = Path(run_dir)
    if any(run_dir.glob("*/checkpoint.safetensors")):
        return True
    for log in run_dir.glob("*/metrics.jsonl"):
        with log.open() as fh:
            if any('"event": "step"' in line for line in fh):
                return True
    return False


def _plain(value: Any) -> Any:
    if attrs.has(type(value)):
        return {f.name: _plain(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, ComponentRef):  # pragma: no cover - ComponentRef is attrs (handled above)
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def resolved_recipe(recipe: Recipe) -> dict[str, Any]:
    """Every field of the recipe with defaults filled in (component configs included)."""
    data = _plain(recipe)
    data.pop("raw", None)
    data.pop("key_files", None)
    return data


def write_recipe(run_dir: Path, recipe: Recipe, code_lengths: tuple[int, ...]) -> None:
    raw = dict(recipe.raw)
    raw.pop("extends", None)
    if code_lengths:
        raw["code_lengths"] = list(code_lengths)
    raw.setdefault("name", recipe.name)
    atomic_write_text(Path(run_dir) / RECIPE_FILE, dumps_toml(raw))
    atomic_write_text(Path(run_dir) / "recipe.resolved.json",
                      json.dumps(resolved_recipe(recipe), indent=2, sort_keys=True) + "\n")


def environment(device: Any, world_size: int) -> dict[str, Any]:
    """Versions and device description for ``environment.json``."""
    import numpy
    import torch

    import hashkit
    from hashkit.registry import get_registry

    env: dict[str, Any] = {
        "hashkit": hashkit.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "device": str(device),
        "world_size": world_size,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    try:
        import torchvision

        env["torchvision"] = torchvision.__version__
    except ImportError:  # pragma: no cover - torchvision is a dependency
        env["torchvision"] = None
    if getattr(device, "type", str(device)) == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    env["plugins"] = [
        {"name": p.name, "distribution": p.distribution, "version": p.version, "builtin": p.builtin,
         "error": p.error}
        for p in get_registry().plugins
    ]
    return env


def write_environment(run_dir: Path, device: Any, world_size: int, *, resumed: bool,
                      overrides: dict[str, Any] | None = None) -> None:
    """Write ``environment.json``; on resume the previous content moves to ``resumed_from`` and the overrides
    this session applied (the resume-safe keys) are recorded as ``overrides``."""
    path = Path(run_dir) / "environment.json"
    env = environment(device, world_size)
    if overrides:
        env["overrides"] = dict(overrides)
    if resumed and path.is_file():  # keep the history of the machines a run has seen
        try:
            previous = json.loads(path.read_text())
        except json.JSONDecodeError:
            previous = {}
        history = previous.pop("resumed_from", [])
        env["resumed_from"] = [*history, previous]
    atomic_write_text(path, json.dumps(env, indent=2, sort_keys=True) + "\n")


def record_split(run_dir: Path, data: Any, *, resume: bool) -> None:
    """Write ``split.json`` (the split manifest's checksum and counts); on resume, refuse a changed split."""
    from hashkit.data.manifest import fingerprint
    from hashkit.errors import CheckpointError

    path = Path(run_dir) / "split.json"
    current = fingerprint(data)
    if resume and path.is_file():
        before = json.loads(path.read_text())
        if before.get("checksum") != current["checksum"]:
            raise CheckpointError(
                f"{path}: the dataset split changed since this run started (checksum {before.get('checksum')} "
                f"-> {current['checksum']}, counts {before.get('counts')} -> {current['counts']})"
            )
        return
    atomic_write_text(path, json.dumps(current, indent=2, sort_keys=True) + "\n")
