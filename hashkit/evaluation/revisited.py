"""mAP and mP@k under the revisited Oxford/Paris protocols (Easy, Medium, Hard) with junk images.

Ground truth (revisitop's ``gnd`` files, Radenović et al., CVPR 2018): per query, lists of database indices
``easy``, ``hard`` and ``junk``.

========  =============  ==============================
protocol  positives      ignored (removed from ranking)
========  =============  ==============================
easy      easy           junk, hard
medium    easy + hard    junk
hard      hard           junk, easy
========  =============  ==============================

For each query the database is ranked by decreasing similarity (cosine for descriptors, ``qᵀb`` for ±1
codes, i.e. increasing Hamming distance; ties in database-index order), the ignored images are removed and
AP is computed over the rest. ``ap = "oxford"`` (default) is the trapezoidal AP of the official Oxford /
revisitop evaluation, ``Σ_j ½ (j / r_j + (j + 1) / (r_j + 1)) / R`` over the 0-based ranks ``r_j`` of the
positives (``j / r_j := 1`` when ``r_j = 0``); ``ap = "standard"`` is ``Σ_j (j + 1) / (r_j + 1) / R``.
mP@k follows the official code too: ``k' = min(k, 1-based rank of the last positive)``, P = positives in the
top ``k'`` / ``k'``. Queries without positives under a protocol are left out of its mean (official rule) and
counted in ``empty_<protocol>``.

hashkit's **label encoding** of this ground truth [inferred design] lets it travel through
:class:`~hashkit.interfaces.RetrievalData` targets and :class:`~hashkit.interfaces.RetrievalProblem`
labels: with Q queries there are ``3Q`` classes; database image ``j`` has class ``q`` if it is *easy* for
query ``q``, ``Q + q`` if *hard*, ``2Q + q`` if *junk*; query ``q`` has classes ``q`` and ``Q + q``. The
generic label-overlap relevance then sees easy + hard as relevant (Medium positives, junk counted as
irrelevant rather than removed); :func:`ground_truth_from_targets` recovers the exact lists.
"""

from __future__ import annotations

from typing import Literal, Sequence

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor

from hashkit.errors import ContractError

PROTOCOLS = ("easy", "medium", "hard")


@attrs.frozen
class QueryGroundTruth:
    easy: tuple[int, ...] = ()
    hard: tuple[int, ...] = ()
    junk: tuple[int, ...] = ()


@attrs.frozen
class RevisitedGroundTruth:
    """Per-query easy / hard / junk database indices for a database of ``num_database`` images."""

    queries: tuple[QueryGroundTruth, ...]
    num_database: int

    def split(self, protocol: str, q: int) -> tuple[list[int], list[int]]:
        """``(positives, ignored)`` database indices of query ``q`` under ``protocol``."""
        g = self.queries[q]
        if protocol == "easy":
            return list(g.easy), [*g.junk, *g.hard]
        if protocol == "medium":
            return [*g.easy, *g.hard], list(g.junk)
        if protocol == "hard":
            return list(g.hard), [*g.junk, *g.easy]
        raise ContractError(f"unknown revisited protocol {protocol!r}; expected one of {list(PROTOCOLS)}")


def encode_targets(gt: RevisitedGroundTruth) -> tuple[Tensor, Tensor]:
    """``(query_targets (Q, 3Q), database_targets (N, 3Q))`` float32 in hashkit's label encoding."""
    nq = len(gt.queries)
    query = torch.zeros(nq, 3 * nq)
    database = torch.zeros(gt.num_database, 3 * nq)
    for q, g in enumerate(gt.queries):
        query[q, q] = query[q, nq + q] = 1.0
        for block, idx in enumerate((g.easy, g.hard, g.junk)):
            if idx:
                database[torch.as_tensor(idx, dtype=torch.long), block * nq + q] = 1.0
    return query, database


def ground_truth_from_targets(query_targets: Tensor, database_targets: Tensor) -> RevisitedGroundTruth:
    """Invert :func:`encode_targets`; raises ContractError when the labels are not in that encoding."""
    nq, c = query_targets.shape
    if c != 3 * nq or database_targets.shape[1] != c:
        raise ContractError(
            f"revisited mAP needs labels in the revisited encoding (3·Q = {3 * nq} classes for {nq} queries), "
            f"got query labels {tuple(query_targets.shape)} and database labels {tuple(database_targets.shape)}"
        )
    first = query_targets[:, :nq] > 0
    if not bool((first.sum(dim=1) == 1).all()):
        raise ContractError("revisited mAP: every query label must mark exactly one query id in its first Q classes")
    ids = first.float().argmax(dim=1).tolist()
    db = database_targets > 0
    queries = []
    for qid in ids:
        lists = [tuple(torch.nonzero(db[:, b * nq + qid]).flatten().tolist()) for b in range(3)]
        queries.append(QueryGroundTruth(*lists))
    return RevisitedGroundTruth(tuple(queries), int(database_targets.shape[0]))


def similarity(query: Tensor, database: Tensor, kind: str) -> Tensor:
    """``(Q, N)`` similarity: cosine for ``kind = "cosine"``, ``qᵀb`` (= L − 2·Hamming) for ``"hamming"``."""
    query, database = query.float(), database.float()
    if kind == "cosine":
        return F.normalize(query, dim=1) @ F.normalize(database, dim=1).T
    if kind == "hamming":
        return query @ database.T
    raise ContractError(f"unknown retrieval kind {kind!r}; expected 'cosine' or 'hamming'")


def ranking(scores: Tensor) -> Tensor:
    """``(Q, N)`` database indices by decreasing score, ties by increasing database index (stable)."""
    return torch.sort(-scores, dim=1, stable=True).indices


def _positions_after_removal(order: Tensor, positives: list[int], ignored: list[int]) -> Tensor:
    """0-based ranks of the positives in ``order`` once the ignored items are removed, ascending."""
    n = order.numel()
    rank_of = torch.empty(n, dtype=torch.long)
    rank_of[order] = torch.arange(n)
    ign = set(ignored)
    pos = torch.sort(rank_of[torch.as_tensor([p for p in positives if p not in ign], dtype=torch.long)]).values
    if not ignored:
        return pos
    ign_ranks = torch.sort(rank_of[torch.as_tensor(sorted(ign), dtype=torch.long)]).values
    return pos - torch.searchsorted(ign_ranks, pos)


def average_precision(ranks: Tensor, num_positives: int, ap: str = "oxford") -> float:
    """AP from the ascending 0-based ranks of the positives (after removal) and their count."""
    if num_positives == 0:
        return float("nan")
    r = ranks.double()
    j = torch.arange(len(r), dtype=torch.float64)
    p1 = (j + 1) / (r + 1)
    if ap == "standard":
        return float(p1.sum() / num_positives)
    p0 = torch.where(r == 0, torch.ones_like(r), j / r.clamp_min(1))
    return float(((p0 + p1) / 2).sum() / num_positives)


def revisited_map(
    scores: Tensor,
    gt: RevisitedGroundTruth,
    protocols: Sequence[str] = PROTOCOLS,
    kappas: Sequence[int] = (1, 5, 10),
    ap: Literal["oxford", "standard"] = "oxford",
) -> dict[str, float | list[float]]:
    """mAP and mP@k per protocol from a ``(Q, N)`` similarity matrix (higher = more similar).

    Returns ``map_<p>``, ``mp@<k>_<p>``, ``aps_<p>`` (per-query AP, NaN when empty) and ``empty_<p>``.
    """
    if scores.shape != (len(gt.queries), gt.num_database):
        raise ContractError(
            f"revisited mAP: scores {tuple(scores.shape)} do not match {len(gt.queries)} queries x "
            f"{gt.num_database} database images"
        )
    order = ranking(scores.cpu())
    out: dict[str, float | list[float]] = {}
    for protocol in protocols:
        aps, prs, empty = [], [], 0
        for q in range(len(gt.queries)):
            positives, ignored = gt.split(protocol, q)
            positives = sorted(set(positives) - set(ignored))
            if not positives:
                empty += 1
                aps.append(float("nan"))
                continue
            pos = _positions_after_removal(order[q], positives, ignored)
            aps.append(average_precision(pos, len(positives), ap))
            last = int(pos.max()) + 1
            prs.append([float((pos + 1 <= min(last, k)).sum()) / min(last, k) for k in kappas])
        valid = [a for a in aps if a == a]
        out[f"map_{protocol}"] = sum(valid) / len(valid) if valid else float("nan")
        for i, k in enumerate(kappas):
            out[f"mp@{k}_{protocol}"] = sum(p[i] for p in prs) / len(prs) if prs else float("nan")
        out[f"aps_{protocol}"] = aps
        out[f"empty_{protocol}"] = empty
    return out
