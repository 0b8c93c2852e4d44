"""One directory per bench cell: layout, lock, spec and result files.

::

    OUT/bench.json                       the bench definition (name, file, raw TOML data)
    OUT/cells/<dataset>/<method>/seed<S>-L<bits>/
        .lock                            flock held by the process running the cell
        spec.json                        what the cell computes (recipe, overrides, digest): written at start
        run/                             the hashkit run directory (checkpoints, codes, report.json)
        cell.json                        the cell's results for the report: written last, atomically

A cell is **done** when ``cell.json`` exists, **interrupted** when ``run/recipe.toml`` exists without it
(it resumes from its last checkpoint), and **new** otherwise. Every file is written atomically
(:mod:`hashkit.atomic_io`), and a cell is only ever written by the process holding its lock, so several
processes (``--shard``) can share one output folder.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from hashkit.atomic_io import atomic_write_text
from hashkit.bench.spec import Cell
from hashkit.errors import CheckpointError

CELL_FORMAT = "hashkit-bench-cell"
CELL_VERSION = 1


def cell_dir(out: Path, cell: Cell) -> Path:
    return Path(out) / "cells" / cell.key


def run_dir(out: Path, cell: Cell) -> Path:
    return cell_dir(out, cell) / "run"


def state(out: Path, cell: Cell) -> str:
    """``"done"``, ``"interrupted"`` or ``"new"``."""
    d = cell_dir(out, cell)
    if (d / "cell.json").is_file():
        return "done"
    if (d / "run" / "recipe.toml").is_file():
        return "interrupted"
    return "new"


class CellLock:
    """An exclusive, non-blocking ``flock`` on ``<cell>/.lock``; released on exit or when the process dies."""

    def __init__(self, directory: Path):
        self.path = Path(directory) / ".lock"
        self.fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: the {what} is not valid JSON ({exc})") from None


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def check_spec(out: Path, cell: Cell, spec: dict[str, Any]) -> None:
    """Record ``spec`` for a new cell; for a started or finished one, refuse a different one (one line).

    (``spec.json`` is written under the cell's lock when the cell starts; checking it needs no lock.)"""
    path = cell_dir(out, cell) / "spec.json"
    if not path.is_file():
        write_json(path, spec)
        return
    before = read_json(path, "cell spec")
    changed = sorted(k for k in set(before) | set(spec) if before.get(k) != spec.get(k))
    if changed:
        raise CheckpointError(f"bench cell {cell.key} in {out} was run with other settings ({', '.join(changed)} "
                              f"changed); delete {cell_dir(out, cell)} to run it again, or use another --out")


def read_cell(path: Path) -> dict[str, Any]:
    data = read_json(path, "bench cell result")
    if data.get("format") != CELL_FORMAT or data.get("version") != CELL_VERSION:
        raise CheckpointError(f"{path} is not a hashkit bench cell result (format {CELL_FORMAT} v{CELL_VERSION})")
    return data


def finished_cells(out: Path) -> list[dict[str, Any]]:
    """Every ``cell.json`` under ``out/cells``, in the bench's cell order (dataset, method, seed, code length)."""
    found = [read_cell(p) for p in sorted((Path(out) / "cells").glob("*/*/*/cell.json"))]
    return sorted(found, key=lambda c: c.get("index", 0))
