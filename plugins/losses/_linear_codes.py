"""Binary linear codes behind HHF's τ for 257-1024 classes, built from their generator polynomials.

HHF takes τ = 1 - 2 d / L from the minimum distance d of a binary linear [L, m] code, m = ceil(log2 C)
(Xu et al. 2022; the table hashkit takes from its official ``codetable.xlsx`` covers m = 7, 8 only). For
m = 9 (VegFru, 292 classes) and m = 10 (NABirds, 555 classes) hashkit uses the best codes it can build and
verify, each an m-dimensional subcode (the first m generator rows) of a code built here:

- L = 12: the even-weight code [12, 11, 2]. d = 2 is optimal for m >= 9: a [12, m, 3] code needs
  2^(12 - m) >= 1 + 12 (Hamming bound).
- L = 24: the extended Golay code [24, 12, 8]: the cyclic Golay code [23, 12, 7] with generator polynomial
  g(x) = x^11 + x^10 + x^6 + x^5 + x^4 + x^2 + 1, plus an overall parity bit. d = 8 is optimal for
  m = 10 (Griesmer bound: a [24, 10, 9] code needs n >= 25).
- L = 32: the extended BCH code [32, 11, 12]: the primitive narrow-sense BCH code of length 31 with designed
  distance 11 (roots α^1..α^10, GF(32) from x^5 + x^2 + 1), plus a parity bit.
- L = 48: the extended BCH code [64, 10, 28] (length 63, designed distance 24, roots α^1..α^23, GF(64) from
  x^6 + x + 1, plus a parity bit) punctured to 48 of its 64 coordinates. The kept coordinates were found
  by a seeded local search over puncturing patterns (hashkit's own search, not a published code):
  m = 9 reaches d = 20 (the value of the m = 8 row, so it cannot be improved by a subcode argument),
  m = 10 reaches d = 19. The best known [48, 10] code may be better; Griesmer allows up to 21.

A codeword is a Python int, bit ``i`` = coordinate ``i`` (coefficient of x^i for cyclic codes, the parity
bit last). :func:`minimum_distance` enumerates all 2^k codewords, which is how the tests verify every
entry of :data:`CONSTRUCTED_DMIN`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def _weight(x: int) -> int:
    return bin(x).count("1")


def cyclic_rows(generator: int, n: int, k: int) -> list[int]:
    """Generator rows ``g(x) x^i``, ``i < k``, of the cyclic [n, n - deg g] code (``k`` rows: a subcode)."""
    degree = generator.bit_length() - 1
    if not 0 < k <= n - degree:
        raise ValueError(f"a cyclic [{n}, {n - degree}] code has no {k}-dimensional subcode of this form")
    return [generator << i for i in range(k)]


def with_parity(rows: list[int], n: int) -> list[int]:
    """Append an overall parity bit at coordinate ``n`` (extends an [n, k, d] code, odd d -> d + 1)."""
    return [r | ((_weight(r) & 1) << n) for r in rows]


def puncture(rows: list[int], keep: tuple[int, ...]) -> list[int]:
    """Keep coordinates ``keep`` (in that order) of every row."""
    return [sum(((r >> c) & 1) << i for i, c in enumerate(keep)) for r in rows]


def _gf_tables(m: int, primitive: int) -> tuple[list[int], dict[int, int]]:
    """Antilog and log tables of GF(2^m) built from a primitive polynomial (bit i = coefficient of x^i)."""
    size = (1 << m) - 1
    antilog = [1]
    for _ in range(size - 1):
        v = antilog[-1] << 1
        antilog.append(v ^ primitive if v >> m else v)
    if len(set(antilog)) != size:
        raise ValueError(f"{primitive:#x} is not primitive for GF(2^{m})")
    return antilog, {v: i for i, v in enumerate(antilog)}


def bch_generator(m: int, primitive: int, designed_distance: int) -> int:
    """Generator polynomial of the narrow-sense primitive BCH code of length 2^m - 1: the product of the
    minimal polynomials of α^1 .. α^(δ-1) (each cyclotomic coset once)."""
    size = (1 << m) - 1
    antilog, log = _gf_tables(m, primitive)

    def times(a: int, b: int) -> int:
        return 0 if a == 0 or b == 0 else antilog[(log[a] + log[b]) % size]

    generator, used = 1, set()
    for i in range(1, designed_distance):
        if i % size in used:
            continue
        coset = sorted({(i << j) % size for j in range(m)})
        used.update(coset)
        poly = [1]  # minimal polynomial, coefficients in GF(2^m), lowest degree first
        for c in coset:
            shifted = [0] + poly
            poly = [shifted[d] ^ (times(poly[d], antilog[c]) if d < len(poly) else 0) for d in range(len(shifted))]
        if any(a not in (0, 1) for a in poly):
            raise AssertionError("a minimal polynomial must have binary coefficients")
        binary = sum(a << d for d, a in enumerate(poly))
        product = 0
        for d in range(binary.bit_length()):  # carry-less multiplication over GF(2)
            if binary >> d & 1:
                product ^= generator << d
        generator = product
    return generator


def codeword_weights(rows: list[int]) -> np.ndarray:
    """Weights of all ``2^k`` codewords spanned by ``rows`` (index = message bits), exhaustively."""
    words = np.zeros(1 << len(rows), dtype=object)
    for r, row in enumerate(rows):
        words[1 << r: 1 << (r + 1)] = words[: 1 << r] ^ row
    return np.array([_weight(int(w)) for w in words])


def minimum_distance(rows: list[int]) -> int:
    """Minimum distance of the code spanned by ``rows``; 0 when the rows are linearly dependent."""
    return int(codeword_weights(rows)[1:].min())


GOLAY_23 = 0b110001110101  # x^11 + x^10 + x^6 + x^5 + x^4 + x^2 + 1
#: coordinates of the extended BCH [64, 10, 28] code kept for L = 48 (m = 9: d = 20; m = 10: d = 19)
KEEP_48 = {
    9: (1, 35, 3, 4, 26, 8, 9, 10, 48, 12, 14, 15, 37, 17, 18, 60, 20, 21, 22, 23, 36, 27, 28, 29, 30, 31, 32, 33,
        0, 38, 39, 40, 41, 42, 44, 45, 47, 49, 50, 24, 55, 56, 46, 59, 2, 51, 5, 58),
    10: (1, 2, 4, 5, 24, 8, 21, 10, 11, 12, 13, 14, 15, 16, 30, 18, 44, 32, 37, 22, 7, 29, 34, 33, 3, 0, 36, 26,
         39, 46, 41, 38, 60, 45, 47, 6, 49, 51, 52, 54, 55, 25, 57, 58, 59, 61, 62, 63),
}


def construction(code_length: int, m: int) -> tuple[str, Callable[[], list[int]]]:
    """``(description, rows())`` of hashkit's [L, m] code for m = 9, 10 and L = 12, 24, 32, 48."""
    if m not in (9, 10):
        raise KeyError(m)
    if code_length == 12:
        return "even-weight [12, 11, 2] subcode", lambda: with_parity([1 << i for i in range(m)], 11)
    if code_length == 24:
        return "extended Golay [24, 12, 8] subcode", lambda: with_parity(cyclic_rows(GOLAY_23, 23, m), 23)
    if code_length == 32:
        return ("extended BCH [32, 11, 12] subcode",
                lambda: with_parity(cyclic_rows(bch_generator(5, 0b100101, 11), 31, m), 31))
    if code_length == 48:
        return ("punctured extended BCH [64, 10, 28] (subcode)",
                lambda: puncture(with_parity(cyclic_rows(bch_generator(6, 0b1000011, 24), 63, m), 63), KEEP_48[m]))
    raise KeyError(code_length)


#: minimum distances of :func:`construction`'s codes (verified exhaustively in tests): {m: {L: d}}
CONSTRUCTED_DMIN: dict[int, dict[int, int]] = {
    9: {12: 2, 24: 8, 32: 12, 48: 20},
    10: {12: 2, 24: 8, 32: 12, 48: 19},
}
