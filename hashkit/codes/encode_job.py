"""Encoding a large collection into one code file in resumable chunks.

The image list is cut into chunks of ``chunk_size`` images. Each finished chunk is written atomically as a
small code file into ``<out>.partial/`` (``chunk-000000.safetensors``, ...), next to a ``job.json`` that
identifies the job: the model's weights digest, code length, transform, image root, the checksum of the
image list, the chunk size and the options that change the result. An encode that is killed and started
again with the same job finds the finished chunks (each validated like any code file; a damaged one is
encoded again) and continues with the first missing one; the final file equals an uninterrupted encode's.
When every chunk is done the code file is written atomically and the ``.partial`` directory removed.

A ``.partial`` directory of another job (other images, model or options) is never mixed in: the encode
refuses to start unless told to overwrite, which discards it. Whether unreadable images are skipped is not
part of the job: chunks finished without skipping serve a rerun with ``--skip-bad-images`` (the usual
sequence after an encode stopped at a bad file), and a chunk that skipped images stops a rerun without it at
the first skipped image, as encoding it again would.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import attrs
import numpy as np

from hashkit.atomic_io import atomic_write_text
from hashkit.codes.code_file import encode_path, load_code_file, save_code_file
from hashkit.codes.encoder import EncodedImages
from hashkit.codes.packing import pack_codes
from hashkit.errors import CodeFileError, DataError, OutputError

PARTIAL_SUFFIX = ".partial"
JOB_FILE = "job.json"


def partial_dir(out: Path) -> Path:
    return Path(out).with_name(Path(out).name + PARTIAL_SUFFIX)


def items_checksum(items: Sequence[str]) -> str:
    h = hashlib.sha256()
    for item in items:
        h.update(encode_path(item) + b"\0")
    return h.hexdigest()


@attrs.define
class EncodedCollection:
    """Packed codes of the encoded images, their ids (positions in the image list), paths, the skipped
    ``(path, reason)`` pairs, descriptors (when asked), and how many images came from earlier chunks."""

    packed: np.ndarray
    ids: np.ndarray
    paths: list[str]
    skipped: list[tuple[str, str]]
    descriptors: np.ndarray | None
    resumed_images: int = 0


def _prepare(pdir: Path, job: dict[str, Any], overwrite: bool) -> None:
    if pdir.exists() and not pdir.is_dir():
        raise OutputError(f"{pdir} exists and is not a directory (it is where encode keeps finished chunks)")
    if pdir.is_dir():
        try:
            same = json.loads((pdir / JOB_FILE).read_text()) == job
        except (OSError, ValueError):
            same = False
        if same:
            return
        if not overwrite:
            raise OutputError(f"{pdir} holds a partial encode of other images, another model or other options; "
                              "remove it, or pass --overwrite to discard it")
        shutil.rmtree(pdir)
    pdir.mkdir(parents=True)
    atomic_write_text(pdir / JOB_FILE, json.dumps(job, indent=1, sort_keys=True) + "\n")


def _finished_chunk(path: Path, start: int, stop: int) -> Any:
    """The loaded chunk file if it is complete and belongs to ``[start, stop)``; else ``None``."""
    if not path.is_file():
        return None
    try:
        chunk = load_code_file(path)
    except CodeFileError:
        return None
    if chunk.metadata.get("extra.chunk") != f"{start}:{stop}":
        return None
    return chunk


def encode_collection(out: Path, items: Sequence[str], job: dict[str, Any],
                      encode_range: Callable[[int, int], EncodedImages], *, num_bits: int, chunk_size: int,
                      overwrite: bool = False, skip_bad_images: bool = False,
                      on_resume: Callable[[int], None] | None = None) -> EncodedCollection:
    """Encode ``items`` in chunks through ``encode_range(start, stop)``, keeping finished chunks on disk.

    ``job`` identifies what is encoded (model, transform, options); the image list and chunk size are added
    here. ``on_resume(n)`` is told how many images earlier runs already encoded. The caller writes the final
    code file and then calls :func:`finish` to remove the chunks.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be > 0, found {chunk_size}")
    pdir = partial_dir(out)
    job = {**job, "images": len(items), "images_sha256": items_checksum(items), "chunk_size": chunk_size,
           "num_bits": num_bits}
    _prepare(pdir, job, overwrite)
    bounds = [(s, min(s + chunk_size, len(items))) for s in range(0, len(items), chunk_size)]
    chunks = [_finished_chunk(pdir / f"chunk-{c:06d}.safetensors", s, e) for c, (s, e) in enumerate(bounds)]
    if not skip_bad_images:
        for chunk in chunks:
            if chunk is not None and chunk.skipped:
                path, reason = chunk.skipped[0]
                raise DataError(f"{reason} (pass --skip-bad-images to leave unreadable images out)")
    done = sum(e - s for (s, e), chunk in zip(bounds, chunks) if chunk is not None)
    if done and on_resume is not None:
        on_resume(done)
    for c, ((start, stop), chunk) in enumerate(zip(bounds, chunks)):
        if chunk is not None:
            continue
        res = encode_range(start, stop)
        ids = [start + i for i in res.indices]
        chunks[c] = load_code_file(save_code_file(
            pdir / f"chunk-{c:06d}.safetensors", pack_codes(res.codes), num_bits, ids=ids,
            paths=[items[i] for i in ids], descriptors=res.descriptors, skipped=res.skipped,
            extra={"chunk": f"{start}:{stop}"}))
    descriptors = None
    if any(ch.descriptors is not None for ch in chunks):
        descriptors = np.concatenate([ch.descriptors.numpy() for ch in chunks])
    return EncodedCollection(
        packed=np.concatenate([ch.codes.numpy() for ch in chunks]) if chunks else np.zeros((0, 0), np.uint8),
        ids=np.concatenate([ch.ids.numpy() for ch in chunks]) if chunks else np.zeros(0, np.int64),
        paths=[p for ch in chunks for p in (ch.paths or ())],
        skipped=[s for ch in chunks for s in ch.skipped],
        descriptors=descriptors, resumed_images=done)


def finish(out: Path) -> None:
    """Remove the finished chunks of ``out`` (after the code file was written)."""
    shutil.rmtree(partial_dir(out), ignore_errors=True)
