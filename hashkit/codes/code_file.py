"""Code files: packed hash codes of a collection in one safetensors file.

Tensors
-------
- ``codes``: uint8 ``(n, ceil(L/8))`` in the :data:`hashkit.codes.packing.BIT_ORDER` layout (code bit ``i`` ->
  byte ``i // 8``, bit ``7 - i % 8``; +1 -> 1; zero padding bits);
- ``ids``: int64 ``(n,)``, unique (default ``0..n-1``);
- ``paths_utf8`` uint8 and ``paths_offsets`` int64 ``(n+1,)`` (optional): relative path ``i`` is the byte
  string ``paths_utf8[offsets[i]:offsets[i+1]]``, UTF-8 for every valid name. A file name that is not valid
  UTF-8 (possible on POSIX file systems) is stored as its raw bytes: Python hands such names around as
  ``str`` with the undecodable bytes as lone surrogates (``surrogateescape``), which encode back to exactly
  those bytes, and :func:`load_code_file` decodes them the same way, so the path still opens the file;
- ``labels``: float32 ``(n, C)`` multi-hot (optional);
- ``descriptors``: float32 ``(n, D)`` real-valued descriptors (optional; ``hashkit encode --descriptors``) for
  re-ranking Hamming candidates.

Metadata (safetensors header, all strings): ``format = "hashkit.codes"``, ``format_version = "2"``,
``num_bits``, ``num_codes``, ``bit_order``, ``hashkit_version``, ``recipe_hash``, ``protocol``, optional
``skipped`` (JSON ``[[path, reason], ...]`` of the images left out), free ``extra.*`` keys, and ``sha256``:
the :func:`~hashkit.integrity.content_digest` of every other metadata field and every tensor, so a flipped
byte in the codes, ids, paths, labels or descriptors and an edited ``num_bits`` or ``extra.*`` value are all
detected.

:func:`load_code_file` checks all of it and raises :class:`~hashkit.errors.CodeFileError` naming the file and
the problem for truncated, tampered or inconsistent files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import attrs
import numpy as np
import torch

from hashkit.atomic_io import atomic_write_bytes
from hashkit.codes.packing import BIT_ORDER, num_bytes
from hashkit.errors import CodeFileError
from hashkit.integrity import DIGEST_FIELD, content_digest

FORMAT = "hashkit.codes"
FORMAT_VERSION = "2"
_REQUIRED_META = ("format", "format_version", "num_bits", "num_codes", "bit_order", DIGEST_FIELD,
                  "hashkit_version", "recipe_hash", "protocol")
_OPTIONAL_META = ("skipped",)
_KNOWN_TENSORS = {"codes", "ids", "paths_utf8", "paths_offsets", "labels", "descriptors"}


@attrs.frozen
class CodeFile:
    """A loaded (validated) code file."""

    codes: torch.Tensor  # uint8 (n, ceil(num_bits / 8))
    num_bits: int
    ids: torch.Tensor  # int64 (n,)
    paths: tuple[str, ...] | None = None
    labels: torch.Tensor | None = None  # float32 (n, C)
    metadata: Mapping[str, str] = attrs.field(factory=dict)
    descriptors: torch.Tensor | None = None  # float32 (n, D)

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """``(path, reason)`` of the images that ``hashkit encode --skip-bad-images`` left out."""
        return [tuple(x) for x in json.loads(self.metadata.get("skipped", "[]"))]


def _digest(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> str:
    return content_digest(metadata, ((k, str(a.dtype), a.shape, np.ascontiguousarray(a).tobytes())
                                     for k, a in tensors.items()))


def encode_path(path: str | bytes) -> bytes:
    """A path as the bytes stored in ``paths_utf8`` (UTF-8; undecodable names keep their raw bytes)."""
    return path if isinstance(path, bytes) else path.encode("utf-8", "surrogateescape")


def decode_path(raw: bytes) -> str:
    """The inverse of :func:`encode_path`: UTF-8, raw bytes of invalid names as lone surrogates."""
    return raw.decode("utf-8", "surrogateescape")


def printable_path(path: str) -> str:
    """``path`` for a terminal: undecodable bytes shown as ``\\xNN`` (the stored name is unchanged)."""
    return encode_path(path).decode("utf-8", "backslashreplace")


def padding_mask(num_bits: int) -> int:
    """Bits of the last byte that must be zero (the padding of a ``num_bits``-bit code)."""
    used = num_bits - 8 * (num_bytes(num_bits) - 1)
    return (1 << (8 - used)) - 1


def save_code_file(path: str | Path, codes: torch.Tensor | np.ndarray, num_bits: int, *,
                   ids: Sequence[int] | torch.Tensor | None = None, paths: Sequence[str] | None = None,
                   labels: torch.Tensor | None = None, descriptors: torch.Tensor | np.ndarray | None = None,
                   recipe_hash: str = "", protocol: str = "", skipped: Sequence[tuple[str, str]] | None = None,
                   extra: Mapping[str, str] | None = None) -> Path:
    """Write packed ``codes`` (uint8 ``(n, ceil(num_bits/8))``) and their ids/paths/labels atomically.

    ``skipped`` lists ``(path, reason)`` of images that were left out; ``descriptors`` ``(n, D)`` are stored as
    float32 for re-ranking.
    """
    from safetensors.numpy import save

    from hashkit import __version__

    path = Path(path)
    arr = np.ascontiguousarray(codes.numpy() if isinstance(codes, torch.Tensor) else np.asarray(codes))
    n = len(arr)
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != num_bytes(num_bits):
        raise CodeFileError(f"{path}: codes must be packed uint8 (n, {num_bytes(num_bits)}) for {num_bits} bits, "
                            f"found {arr.dtype} {arr.shape}")
    if n and np.any(arr[:, -1] & padding_mask(num_bits)):
        raise CodeFileError(f"{path}: padding bits of the packed codes must be zero (pack with pack_codes)")
    tensors: dict[str, np.ndarray] = {"codes": arr}
    id_arr = np.arange(n, dtype=np.int64) if ids is None else np.asarray(
        ids.numpy() if isinstance(ids, torch.Tensor) else ids, dtype=np.int64).reshape(-1)
    tensors["ids"] = id_arr
    if paths is not None:
        encoded = [encode_path(p) for p in paths]
        tensors["paths_utf8"] = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        tensors["paths_offsets"] = offsets
    if labels is not None:
        tensors["labels"] = np.ascontiguousarray(
            labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else labels, dtype=np.float32)
    if descriptors is not None:
        tensors["descriptors"] = np.ascontiguousarray(
            descriptors.detach().float().cpu().numpy() if isinstance(descriptors, torch.Tensor) else descriptors,
            dtype=np.float32)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "num_bits": str(int(num_bits)),
        "num_codes": str(n),
        "bit_order": BIT_ORDER,
        "hashkit_version": __version__,
        "recipe_hash": recipe_hash,
        "protocol": protocol,
    }
    if skipped:
        metadata["skipped"] = json.dumps([[str(p), str(r)] for p, r in skipped])
    for key, value in (extra or {}).items():
        metadata[f"extra.{key}"] = str(value)
    metadata[DIGEST_FIELD] = _digest(tensors, metadata)
    _validate(path, tensors, metadata)  # never write a file that would not load
    atomic_write_bytes(path, save(tensors, metadata=metadata))
    return path


def load_code_file(path: str | Path) -> CodeFile:
    """Read and validate a code file; :class:`CodeFileError` names the file and what is wrong."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CodeFileError(f"{path}: no such code file")
    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = dict(f.metadata() or {})
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except CodeFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for broken files
        raise CodeFileError(f"{path}: not a readable safetensors code file (truncated or corrupt?): {exc}") from None
    _validate(path, tensors, metadata)
    paths = None
    if "paths_utf8" in tensors:
        raw = tensors["paths_utf8"].tobytes()
        off = tensors["paths_offsets"]
        paths = tuple(decode_path(raw[off[i]:off[i + 1]]) for i in range(len(off) - 1))
    labels = torch.from_numpy(tensors["labels"]) if "labels" in tensors else None
    descriptors = torch.from_numpy(tensors["descriptors"]) if "descriptors" in tensors else None
    return CodeFile(torch.from_numpy(tensors["codes"]), int(metadata["num_bits"]), torch.from_numpy(tensors["ids"]),
                    paths, labels, metadata, descriptors)


def _validate(path: Path, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> None:
    def fail(message: str):
        raise CodeFileError(f"{path}: {message}")

    missing = [k for k in _REQUIRED_META if k not in metadata]
    if missing:
        fail(f"metadata lacks {', '.join(missing)} (not a hashkit code file?)")
    if metadata["format"] != FORMAT:
        fail(f"metadata format is {metadata['format']!r}, expected {FORMAT!r}")
    if metadata["format_version"] != FORMAT_VERSION:
        fail(f"format_version {metadata['format_version']!r} is not supported (expected {FORMAT_VERSION!r}; "
             "re-encode the images with this hashkit)")
    if metadata["bit_order"] != BIT_ORDER:
        fail(f"bit_order {metadata['bit_order']!r} is not supported (expected {BIT_ORDER!r})")
    try:
        num_bits, num_codes = int(metadata["num_bits"]), int(metadata["num_codes"])
    except ValueError:
        fail(f"num_bits {metadata['num_bits']!r} / num_codes {metadata['num_codes']!r} must be integers")
    if num_bits <= 0 or num_codes < 0:
        fail(f"num_bits must be > 0 and num_codes >= 0, found {num_bits} and {num_codes}")
    unknown = set(tensors) - _KNOWN_TENSORS
    if unknown:
        fail(f"unexpected tensors {sorted(unknown)}")
    odd = sorted(k for k in metadata if k not in (*_REQUIRED_META, *_OPTIONAL_META) and not k.startswith("extra."))
    if odd:
        fail(f"unexpected metadata {odd[:5]}")
    for name in ("codes", "ids"):
        if name not in tensors:
            fail(f"tensor {name!r} is missing")
    codes, ids = tensors["codes"], tensors["ids"]
    if codes.dtype != np.uint8 or codes.shape != (num_codes, num_bytes(num_bits)):
        fail(f"codes are {codes.dtype} {codes.shape}, metadata says uint8 ({num_codes}, {num_bytes(num_bits)}) "
             f"for {num_codes} codes of {num_bits} bits")
    if num_codes and np.any(codes[:, -1] & padding_mask(num_bits)):
        fail("padding bits of the codes are not zero (inconsistent with num_bits)")
    if _digest(tensors, metadata) != metadata[DIGEST_FIELD]:
        fail(f"content does not match its {DIGEST_FIELD} checksum (codes, ids, paths, labels or metadata modified, "
             "or the file is corrupt)")
    if ids.dtype != np.int64 or ids.shape != (num_codes,):
        fail(f"ids are {ids.dtype} {ids.shape}, expected int64 ({num_codes},)")
    if len(np.unique(ids)) != num_codes:
        fail("ids are not unique")
    if ("paths_utf8" in tensors) != ("paths_offsets" in tensors):
        fail("paths_utf8 and paths_offsets must be present together")
    if "paths_offsets" in tensors:
        off, raw = tensors["paths_offsets"], tensors["paths_utf8"]
        if off.dtype != np.int64 or off.shape != (num_codes + 1,) or raw.dtype != np.uint8 or raw.ndim != 1:
            fail(f"paths_offsets must be int64 ({num_codes + 1},) and paths_utf8 uint8 1-D, found "
                 f"{off.dtype} {off.shape} and {raw.dtype} {raw.shape}")
        if off[0] != 0 or off[-1] != len(raw) or np.any(np.diff(off) < 0):
            fail("paths_offsets are not increasing from 0 to the length of paths_utf8")
    if "labels" in tensors:
        labels = tensors["labels"]
        if labels.dtype != np.float32 or labels.ndim != 2 or labels.shape[0] != num_codes:
            fail(f"labels are {labels.dtype} {labels.shape}, expected float32 ({num_codes}, C)")
    if "descriptors" in tensors:
        desc = tensors["descriptors"]
        if desc.dtype != np.float32 or desc.ndim != 2 or desc.shape[0] != num_codes:
            fail(f"descriptors are {desc.dtype} {desc.shape}, expected float32 ({num_codes}, D)")
    if "skipped" in metadata:
        try:
            skipped = json.loads(metadata["skipped"])
            ok = isinstance(skipped, list) and all(isinstance(x, list) and len(x) == 2 for x in skipped)
        except json.JSONDecodeError:
            ok = False
        if not ok:
            fail("metadata 'skipped' is not a JSON list of [path, reason] pairs")
