"""One SHA-256 content digest for hashkit's self-validating safetensors files (checkpoints, code files).

The digest covers every header field except the digest itself (as JSON ``[key, value]`` pairs, sorted by
key) and then every tensor, sorted by name: its name, dtype, shape and raw bytes. So any edit of a value
that gives meaning to the tensors (a bit count, an id, a path, a counter) is detected, not only damage to
the tensor bytes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Iterable, Mapping

#: the header field that holds the digest
DIGEST_FIELD = "sha256"


def content_digest(header: Mapping[str, str], tensors: Iterable[tuple[str, str, tuple[int, ...], bytes]]) -> str:
    """Hex SHA-256 of ``header`` (minus :data:`DIGEST_FIELD`) and ``(name, dtype, shape, bytes)`` tensors."""
    h = hashlib.sha256()
    for key in sorted(k for k in header if k != DIGEST_FIELD):
        h.update(json.dumps([key, header[key]]).encode())
    for name, dtype, shape, data in sorted(tensors, key=lambda t: t[0]):
        h.update(name.encode())
        h.update(dtype.encode())
        h.update(str(tuple(shape)).encode())
        h.update(data)
    return h.hexdigest()
