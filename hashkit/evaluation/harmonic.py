"""Harmonic-number differences ``H(p + m) - H(p)`` for the tie-aware AP formula, accurate for large ``p``.

A table of ``H`` would lose digits for large ``p`` (``H`` ~ 12 while the difference may be ~1e-5). So the
terms ``1/(p+i)`` with denominators up to 63 come from an exact table (:data:`HARMONIC_SMALL`), and the rest
is ``psi(y) - psi(x)`` (:func:`digamma_difference`) for ``x >= 64``: ``log1p((y-x)/x)`` plus the asymptotic
series written as differences without cancellation (error < 1e-19 for ``x >= 64``).

:func:`digamma_difference` is plain arithmetic on numpy arrays or floats, so the compiled kernel of
:mod:`hashkit.evaluation.hamming_ranks` compiles the same function for scalars.
"""

from __future__ import annotations

import numpy as np

SMALL = 64
#: ``H[0..63]``
HARMONIC_SMALL = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, SMALL))])


def digamma_difference(x, y):
    """``psi(y) - psi(x)`` for ``64 <= x <= y`` (arrays or floats)."""
    n = y - x
    x2, y2 = x * x, y * y
    return (np.log1p(n / x) + n / (2 * x * y) + n * (x + y) / (12 * x2 * y2)
            - n * (x + y) * (x2 + y2) / (120 * x2 * x2 * y2 * y2)
            + n * (x + y) * (x2 + x * y + y2) * (x2 - x * y + y2) / (252 * x2 ** 3 * y2 ** 3))


def harmonic_difference(p: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``sum_{i=1..m} 1/(p+i) = H(p+m) - H(p)`` elementwise (float64, accurate to a few ulp)."""
    p = np.asarray(p, dtype=np.float64)
    end = p + np.asarray(m, dtype=np.float64)
    # the part of 1/(p+1) .. 1/(p+m) with denominators <= 63, from the small exact table
    lo, hi = np.minimum(p, SMALL - 1).astype(np.int64), np.minimum(end, SMALL - 1).astype(np.int64)
    small = HARMONIC_SMALL[hi] - HARMONIC_SMALL[lo]
    # the part with denominators >= 64
    return small + digamma_difference(np.maximum(p, SMALL - 1) + 1.0, np.maximum(end, SMALL - 1) + 1.0)
