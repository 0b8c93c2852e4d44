"""Checking an output location before any work starts: ``check_output_file``, ``check_output_dir`` (a new run
directory) and ``check_output_folder`` (a folder of plots or pages that may already hold files).

A command that writes a file or a run directory calls one of these first, so a wrong ``--out`` (an existing
file, a directory where a file is wanted, ``/dev/null``, a path under a regular file, a read-only or
non-writable location) fails at once with one :class:`~hashkit.errors.OutputError` line instead of after
hours of work. Writability is probed by creating (and removing) an empty temp file in the nearest existing
directory, which also catches read-only mounts where permission bits say nothing (as root, for example).
A disk that fills up later is still only found when the write fails; that failure is reported the same way.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hashkit.atomic_io import write_error
from hashkit.errors import OutputError


def _existing_ancestor(path: Path) -> Path:
    """The nearest ancestor of ``path`` that exists; :class:`OutputError` if it is not a directory."""
    parent = path.parent
    while not os.path.lexists(parent):
        if parent == parent.parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"cannot write {path}: {parent} is not a directory")
    return parent


def _probe(directory: Path, target: Path) -> None:
    try:
        fd, probe = tempfile.mkstemp(prefix=".hashkit-write-test-", dir=directory)
    except OSError as exc:
        raise write_error(target, exc) from None
    os.close(fd)
    os.unlink(probe)


def check_output_file(path: Path | str, *, overwrite: bool = False, option: str = "--out") -> Path:
    """``path`` if a file can be written there: not a directory or device, not existing unless ``overwrite``."""
    path = Path(path)
    if os.path.lexists(path):
        if path.is_dir():
            raise OutputError(f"{option} {path} is a directory; name the file to write")
        if not path.is_file():
            raise OutputError(f"{option} {path} exists and is not a regular file")
        if not overwrite:
            raise OutputError(f"{option} {path} exists; pass --overwrite to replace it")
    _probe(_existing_ancestor(path), path)
    return path


def check_output_dir(path: Path | str, *, option: str = "--out") -> Path:
    """``path`` if a new run directory can be made there: absent, or an empty directory, and writable."""
    path = Path(path)
    if os.path.lexists(path):
        if not path.is_dir():
            raise OutputError(f"{option} {path} exists and is not a directory")
        if any(path.iterdir()):
            raise OutputError(f"run directory {path} exists and is not empty; choose another {option} or pass "
                              "--resume to continue it")
        _probe(path, path)
    else:
        _probe(_existing_ancestor(path), path)
    return path


def check_output_folder(path: Path | str, *, option: str = "--out") -> Path:
    """``path`` if files can be written into it: an existing directory or none yet, and writable. Its files are
    replaced (plots, galleries and report pages are outputs to look at, not results to keep)."""
    path = Path(path)
    if os.path.lexists(path):
        if not path.is_dir():
            raise OutputError(f"{option} {path} exists and is not a directory")
        _probe(path, path)
    else:
        _probe(_existing_ancestor(path), path)
    return path
