"""Atomic file writes: temp file in the same directory -> fsync -> rename -> directory fsync.

A reader (or a run killed at any moment) sees either the old file or the new one, never a partial one; a
failed write leaves no temp file behind. The new file gets the permissions a plain ``open(path, "w")`` would
give it (``0o666`` minus the process umask), not ``mkstemp``'s private ``0o600``, so runs and code files on a
shared cluster are as readable as any other file the user writes. A write that fails (disk full, read-only
file system, no permission) raises :class:`~hashkit.errors.OutputError` naming the file.

Temp files are named ``.<file name>.<8 random characters>.tmp``; a process killed between creating and
renaming one leaves it behind, and :func:`remove_stale_temp_files` (called when a run is resumed) removes them.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from hashkit.errors import OutputError

#: what :func:`atomic_write_bytes` names its temp files (``mkstemp`` adds 8 characters of [a-z0-9_])
TEMP_FILE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def current_umask() -> int:
    """The process umask, read without changing it where the platform allows (Linux ``/proc``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no race-free read elsewhere: set and restore at once
    os.umask(mask)
    return mask


def write_error(path: Path | str, exc: OSError) -> OutputError:
    """A one-line :class:`OutputError` for a failed write of ``path``."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return OutputError(f"cannot write {path}: {reason}")


def _write_all(fh, data: bytes, target: Path) -> None:
    """Write and fsync ``data`` into the temp file for ``target`` (one function, so tests can inject faults)."""
    fh.write(data)
    fh.flush()
    os.fsync(fh.fileno())


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (mode ``0o666 & ~umask``); :class:`OutputError` on failure."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o666 & ~current_umask())
            _write_all(fh, data, path)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise write_error(path, exc) from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    _fsync_dir(path.parent)


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_png(path: Path | str, image) -> None:
    """Encode a PIL ``image`` as PNG in memory, then write it to ``path`` atomically (galleries, attention maps)."""
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def remove_stale_temp_files(directory: Path | str) -> list[Path]:
    """Delete the temp files a killed atomic write left in ``directory``; returns what was removed."""
    removed = []
    for candidate in Path(directory).iterdir():
        if candidate.is_file() and TEMP_FILE.match(candidate.name):
            candidate.unlink()
            removed.append(candidate)
    return removed


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
