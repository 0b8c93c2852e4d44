"""Hamming search over packed codes: one interface, an exact popcount backend and optional faiss backends.

``make_backend("exact", num_bits)`` always works; ``"faiss-flat"``, ``"faiss-ivf"``, ``"faiss-hnsw"`` and
``"faiss-multihash"`` need the ``faiss`` extra (imported only when asked for).
"""

from __future__ import annotations

from hashkit.errors import ContractError
from hashkit.search.base import KnnResult, RadiusResult, SearchBackend
from hashkit.search.exact import ExactBackend

BACKENDS = ("exact", "faiss-flat", "faiss-ivf", "faiss-hnsw", "faiss-multihash")

__all__ = ["BACKENDS", "ExactBackend", "KnnResult", "RadiusResult", "SearchBackend", "make_backend"]


def make_backend(name: str, num_bits: int, **options) -> SearchBackend:
    """A search backend by name (see :data:`BACKENDS`); ``options`` go to the faiss backend's constructor."""
    if name == "exact":
        if options:
            raise ContractError(f"the exact backend takes no options, found {sorted(options)}")
        return ExactBackend(num_bits)
    if name in BACKENDS:
        from hashkit.search.faiss_backend import FaissBackend

        return FaissBackend(num_bits, name.split("-", 1)[1], **options)
    raise ContractError(f"unknown search backend {name!r}; available: {', '.join(BACKENDS)}")
