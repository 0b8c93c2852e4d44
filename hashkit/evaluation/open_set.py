"""The four open-set retrieval protocols of a seen/unseen class split (DSH_Analysis), as retrieval problems.

With ``Q_s`` / ``Q_u`` the seen / unseen queries and ``D_s`` / ``D_u`` the seen / unseen database rows:

==================  ========  ==============  ==========================================
protocol            queries   database        relevance from
==================  ========  ==============  ==========================================
``seen@seen``       Q_s       D_s             the first ``C_s`` (seen) label columns
``seen@all``        Q_s       [D_s ; D_u]     all ``C`` columns
``unseen@unseen``   Q_u       D_u             all ``C`` columns
``unseen@all``      Q_u       [D_s ; D_u]     all ``C`` columns
==================  ========  ==============  ==========================================

The "@all" databases put the seen rows first (the order only matters for ties). The codes of ``D_s`` come
from the method (:func:`database_parts`): learned codes (ADSH family) or label-derived codes (FISH, CHN) of
the seen training items where the training protocol defines them, otherwise encoded by the network; ``D_u``,
``Q_s`` and ``Q_u`` are always encoded. An ``"encoded"`` database encodes ``D_s`` too, for every method.
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from hashkit.errors import ContractError
from hashkit.interfaces import RetrievalProblem

PROTOCOLS = ("seen@seen", "seen@all", "unseen@unseen", "unseen@all")
#: where the codes of each database part come from, per database kind
PART_SOURCES = {"learned": ("learned", "encoded"), "label": ("label", "encoded"), "encoded": ("encoded", "encoded")}


@attrs.frozen
class CodedPart:
    """Codes (or descriptors) ``(n, L)`` of one image set and its labels ``(n, C)`` over all columns."""

    codes: Tensor
    labels: Tensor

    def __attrs_post_init__(self) -> None:
        if self.codes.ndim != 2 or self.labels.ndim != 2 or len(self.codes) != len(self.labels):
            raise ContractError(f"CodedPart needs codes (n, L) and labels (n, C) with the same n, found "
                                f"{tuple(self.codes.shape)} and {tuple(self.labels.shape)}")


def protocol_problem(protocol: str, *, query_seen: CodedPart, query_unseen: CodedPart, database_seen: CodedPart,
                     database_unseen: CodedPart, num_seen: int, kind: str = "hamming") -> RetrievalProblem:
    """The :class:`RetrievalProblem` of one protocol (table in the module docstring)."""
    if protocol not in PROTOCOLS:
        raise ContractError(f"unknown open-set protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    query = query_seen if protocol.startswith("seen@") else query_unseen
    if protocol == "seen@seen":
        database = database_seen
        return RetrievalProblem(query=query.codes, database=database.codes, kind=kind,
                                query_labels=query.labels[:, :num_seen], database_labels=database.labels[:, :num_seen])
    if protocol == "unseen@unseen":
        return RetrievalProblem(query=query.codes, database=database_unseen.codes, kind=kind,
                                query_labels=query.labels, database_labels=database_unseen.labels)
    return RetrievalProblem(query=query.codes, kind=kind,
                            database=torch.cat([database_seen.codes, database_unseen.codes]),
                            query_labels=query.labels,
                            database_labels=torch.cat([database_seen.labels, database_unseen.labels]))


def database_parts(protocol: str, kind: str) -> str:
    """What the database of ``protocol`` is made of for database ``kind`` (recorded with every result)."""
    seen, unseen = PART_SOURCES[kind]
    if protocol == "seen@seen":
        return f"D_s {seen}"
    if protocol == "unseen@unseen":
        return f"D_u {unseen}"
    return f"D_s {seen} + D_u {unseen}"
