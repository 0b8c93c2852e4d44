"""Fault injection into safetensors files for the integrity tests: edit the JSON header, flip a tensor byte."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Callable


def _split(path: Path) -> tuple[dict[str, Any], int, bytes]:
    data = Path(path).read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + size]), size, data


def rewrite_header(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite the header of ``path`` with ``edit(header)`` in place; the tensor bytes are kept."""
    header, size, data = _split(path)
    edit(header)
    raw = json.dumps(header).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + size:])


def flip_byte(path: Path, tensor: str, offset: int = 0, mask: int = 0x01) -> None:
    """XOR byte ``offset`` of ``tensor``'s data with ``mask``."""
    header, size, data = _split(path)
    data = bytearray(data)
    data[8 + size + header[tensor]["data_offsets"][0] + offset] ^= mask
    Path(path).write_bytes(bytes(data))
