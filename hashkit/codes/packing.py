"""Bit packing of ±1 codes and Hamming distances by popcount.

Bit order (fixed, written into every code file as :data:`BIT_ORDER`):

- code bit ``i`` (0-based column of the ``(n, L)`` ±1 matrix) goes to byte ``i // 8``, bit ``7 - i % 8``
  (most significant bit first, numpy's ``packbits(bitorder="big")``);
- ``+1`` is stored as bit 1, ``-1`` as bit 0;
- the ``8 * ceil(L / 8) - L`` padding bits of the last byte are 0.

Because the padding bits are 0 on both sides, ``popcount(q XOR b)`` over the padded bytes equals the
Hamming distance of the ``L``-bit codes, which also holds after viewing the bytes as uint64 words
(:func:`to_words` pads with zero bytes).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "BIT_ORDER",
    "num_bytes",
    "pack_codes",
    "unpack_codes",
    "to_words",
    "hamming_distances",
    "distance_dtype",
]

BIT_ORDER = "msb0"
"""Name of the layout above: code bit i -> byte i//8, bit 7 - i%8; +1 -> 1; zero padding bits."""


def num_bytes(num_bits: int) -> int:
    """Bytes per packed code: ``ceil(num_bits / 8)``."""
    return (int(num_bits) + 7) // 8


def _as_numpy(x) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def pack_codes(codes: Tensor | np.ndarray) -> Tensor:
    """Pack ±1 codes ``(n, L)`` (any real dtype) into ``uint8 (n, ceil(L/8))`` in the :data:`BIT_ORDER` layout.

    Raises ``ValueError`` if an entry is not exactly ``+1`` or ``-1`` (e.g. ``sign(0) = 0``: binarise with
    :func:`hashkit.codes.binarize.binarize` first).
    """
    arr = _as_numpy(codes)
    if arr.ndim != 2:
        raise ValueError(f"pack_codes expects (n, L) codes, got shape {tuple(arr.shape)}")
    positive = arr > 0
    if not np.all(positive | (arr == -1)):
        bad = arr[~(positive | (arr == -1))]
        raise ValueError(f"pack_codes expects entries in {{-1, +1}}, found {bad.flat[0]!r} (binarize first)")
    return torch.from_numpy(np.packbits(positive, axis=1, bitorder="big"))


def unpack_codes(packed: Tensor | np.ndarray, num_bits: int) -> Tensor:
    """Inverse of :func:`pack_codes`: ``uint8 (n, ceil(L/8))`` -> float32 ±1 ``(n, L)``."""
    arr = _as_numpy(packed)
    if arr.dtype != np.uint8 or arr.ndim != 2:
        raise ValueError(f"unpack_codes expects uint8 (n, bytes), got {arr.dtype} {tuple(arr.shape)}")
    if arr.shape[1] != num_bytes(num_bits):
        raise ValueError(f"{num_bits}-bit codes take {num_bytes(num_bits)} bytes, found {arr.shape[1]}")
    bits = np.unpackbits(arr, axis=1, count=num_bits, bitorder="big")
    return torch.from_numpy(bits.astype(np.float32) * 2 - 1)


def to_words(packed: Tensor | np.ndarray) -> np.ndarray:
    """View packed bytes ``(n, B)`` as ``uint64 (n, ceil(B/8))`` words, padding with zero bytes.

    Only popcounts of XORs are meaningful on the result (byte order inside a word is the machine's).
    """
    arr = np.ascontiguousarray(_as_numpy(packed), dtype=np.uint8)
    n, nb = arr.shape
    words = -(-nb // 8)
    if nb != words * 8:
        padded = np.zeros((n, words * 8), dtype=np.uint8)
        padded[:, :nb] = arr
        arr = padded
    return arr.view(np.uint64).reshape(n, words)


def distance_dtype(num_bits: int) -> np.dtype:
    """The smallest unsigned dtype holding distances 0..num_bits (uint8 up to 255 bits)."""
    return np.dtype(np.uint8) if num_bits <= 255 else np.dtype(np.uint16)


def hamming_distances(query_words: np.ndarray, database_words: np.ndarray, out: np.ndarray | None = None
                      ) -> np.ndarray:
    """Hamming distances ``(Q, N)`` between uint64 word arrays ``(Q, W)`` and ``(N, W)`` (from :func:`to_words`).

    ``popcount(q XOR b)`` summed over words, with numpy's vectorised ``bitwise_count``; the result is uint8
    (uint16 above 255 bits). Keep ``Q * N`` moderate and loop over query blocks for big problems.
    """
    q = np.asarray(query_words)
    d = np.asarray(database_words)
    if q.ndim != 2 or d.ndim != 2 or q.shape[1] != d.shape[1] or q.dtype != np.uint64 or d.dtype != np.uint64:
        raise ValueError(f"hamming_distances expects uint64 (Q, W) and (N, W), got {q.shape} {q.dtype} and "
                         f"{d.shape} {d.dtype}")
    dtype = distance_dtype(64 * q.shape[1])
    if out is None:
        out = np.empty((q.shape[0], d.shape[0]), dtype=dtype)
    # tiles of (a few query rows) x (at most 2^16 database items) keep the uint64 XOR buffer in cache
    cols = min(d.shape[0], 1 << 16) or 1
    rows = max(1, min(q.shape[0], (1 << 17) // cols))
    buf = np.empty((rows, cols), dtype=np.uint64)
    columns = [np.ascontiguousarray(d[:, w]) for w in range(d.shape[1])]
    for c0 in range(0, d.shape[0], cols):
        c1 = min(c0 + cols, d.shape[0])
        for r0 in range(0, q.shape[0], rows):
            r1 = min(r0 + rows, q.shape[0])
            x = buf[: r1 - r0, : c1 - c0]
            target = out[r0:r1, c0:c1]
            for w, column in enumerate(columns):
                np.bitwise_xor(q[r0:r1, w:w + 1], column[None, c0:c1], out=x)
                if w == 0:
                    np.bitwise_count(x, out=target, casting="unsafe")
                else:
                    target += np.bitwise_count(x).astype(dtype, copy=False)
    return out
