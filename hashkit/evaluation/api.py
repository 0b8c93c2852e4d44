"""``evaluate``: the streamed ranking engine, retrieval figures of a :class:`~hashkit.interfaces.RetrievalProblem`.

This is the implementation behind the built-in ranking metric components (``map``, ``map@k``,
``precision@k``, ``recall@k``, ``pr_curve``, ``precision_radius``, ``cosine_*``); recipes name those
components, and :mod:`hashkit.evaluation.scoring` runs them through the registry. ``metrics`` here are the
engine's quantities, computed together in one pass.

Definitions are in docs/evaluation.md. In short, for each query the database is ranked by increasing Hamming
distance (``kind="hamming"``, ±1 codes, packed to bits and compared by popcount) or decreasing cosine
similarity (``kind="cosine"``); equal distances are ordered by database index (``"map"``), and the exact
expectation over random orders inside ties is reported as ``"map_tie_aware"``. Memory is bounded by the block
size, never by ``Q x N``: a query block holds at most ``block_elements`` elements. Dense paths (cosine, the
numpy Hamming kernel, multi-label relevance) hold ``B x N`` distances or relevance entries, so a block has
``block_elements // N`` queries; the compiled Hamming kernel with single-label relevance holds only each
query's relevant database indices and its ``L + 1`` distance counts, so its blocks take ``block_elements //
(R_max + L + 1)`` queries (``R_max``: the largest label's database count), hundreds of queries where a dense
block takes a few, and the per-block Python work stops mattering.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from hashkit.codes.packing import pack_codes, to_words
from hashkit.errors import ContractError
from hashkit.evaluation.average_precision import (BlockStats, hamming_kernel, packed_hamming_block_stats,
                                                  sorted_block_stats)
from hashkit.evaluation.precision_recall import RadiusAccumulator
from hashkit.evaluation.relevance import Relevance
from hashkit.interfaces import RetrievalProblem

__all__ = ["evaluate", "evaluate_hamming_packed", "METRIC_NAMES", "MAP_NORMS"]

METRIC_NAMES = ("map", "map@k", "precision@k", "recall@k", "pr_curve", "precision_radius")
MAP_NORMS = ("hits_in_topk", "min_k_R", "R")
ZERO_RELEVANT = ("count_as_zero", "exclude")
EMPTY_RADIUS = ("zero", "exclude")
DEFAULT_BLOCK_ELEMENTS = 1 << 19


def _parse_metrics(metrics: Iterable[str], topk: Sequence[int]) -> tuple[set[str], list[int]]:
    names: set[str] = {"map"}
    ks = [int(k) for k in topk if int(k) > 0]
    for m in metrics:
        match = re.fullmatch(r"(map|precision|recall)@(\d+)", m)
        if match:
            names.add(f"{match.group(1)}@k")
            ks.append(int(match.group(2)))
            continue
        if m not in METRIC_NAMES:
            raise ContractError(f"unknown metric {m!r}; known: {', '.join(METRIC_NAMES)} (or map@K, precision@K, "
                                f"recall@K)")
        names.add(m)
    if any(int(k) < 0 for k in topk):
        raise ContractError(f"topk values must be >= 0 (0 = all), found {list(topk)}")
    return names, sorted(set(ks))


def _check_codes(x: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise ContractError(f"RetrievalProblem.{what} must be a 2-D tensor, found {type(x).__name__} "
                            f"{tuple(getattr(x, 'shape', ()))}")
    return x


def evaluate(problem: RetrievalProblem, *, metrics: Sequence[str] = ("map",), topk: Sequence[int] = (0,),
             drop_last_item: bool = False, map_norm: str = "hits_in_topk", zero_relevant: str = "count_as_zero",
             relevance_rule: str = "shared_label", radius: int = 2, empty_radius: str = "zero",
             block_elements: int = DEFAULT_BLOCK_ELEMENTS, num_threads: int | None = None) -> dict[str, Any]:
    """Retrieval metrics of ``problem``; keys listed in docs/evaluation.md.

    Always present: ``map`` (mAP@all, ties by database index), ``map_tie_aware``, ``num_queries``,
    ``num_database``, ``no_relevant_queries`` and the options used. ``map@K`` for each ``K > 0`` in ``topk``
    (normalised by ``map_norm``: ``"hits_in_topk"`` | ``"min_k_R"`` | ``"R"``), ``precision@K`` /
    ``recall@K`` when requested, ``pr_curve`` and ``precision@radius{r}`` for Hamming codes.

    ``drop_last_item`` reproduces the official SEMICON/DeepHash-pytorch evaluation, which drops the
    last-ranked database item; ``relevance_rule="dot"`` is their label rule (dot product > 0).
    """
    q = _check_codes(problem.query, "query")
    d = _check_codes(problem.database, "database")
    if q.shape[1] != d.shape[1]:
        raise ContractError(f"query codes have {q.shape[1]} dims but database codes have {d.shape[1]}")
    relevance = Relevance(problem.query_labels, problem.database_labels, problem.relevance, relevance_rule,
                          num_queries=q.shape[0], num_database=d.shape[0])
    common = dict(metrics=metrics, topk=topk, drop_last_item=drop_last_item, map_norm=map_norm,
                  zero_relevant=zero_relevant, radius=radius, empty_radius=empty_radius,
                  block_elements=block_elements, num_threads=num_threads)
    if problem.kind == "hamming":
        try:
            qp, dp = pack_codes(q), pack_codes(d)
        except ValueError as exc:
            raise ContractError(f"hamming evaluation needs ±1 codes: {exc}") from None
        result = evaluate_hamming_packed(qp, dp, q.shape[1], relevance, **common)
    elif problem.kind == "cosine":
        result = _evaluate(_CosineDistances(q, d), relevance, **common)
    else:
        raise ContractError(f"RetrievalProblem.kind must be 'hamming' or 'cosine', found {problem.kind!r}")
    result["relevance"] = "matrix" if problem.relevance is not None else relevance_rule
    return result


def evaluate_hamming_packed(query_packed, database_packed, num_bits: int, relevance: Relevance,
                            **options) -> dict[str, Any]:
    """:func:`evaluate` on packed codes (``uint8 (n, ceil(L/8))``, :mod:`hashkit.codes.packing` layout)."""
    result = _evaluate(_HammingDistances(query_packed, database_packed, num_bits), relevance, **options)
    result["code_length"] = num_bits
    return result


class _HammingDistances:
    kind = "hamming"

    def __init__(self, query_packed, database_packed, num_bits: int):
        self.query = to_words(query_packed)
        self.database = to_words(database_packed)
        self.num_bits = int(num_bits)
        self.num_queries, self.num_database = len(self.query), len(self.database)
        self.backend = hamming_kernel()

    def elements_per_query(self, relevance: Relevance) -> int:
        """What one query adds to a block: its relevant pairs and ``L + 1`` counts (compiled kernel, single
        labels), else a dense row of ``N``."""
        most = relevance.most_relevant()
        if self.backend == "numpy" or most is None:
            return self.num_database
        return most + self.num_bits + 1

    def block_stats(self, start: int, stop: int, relevance: Relevance, ks, drop_last_item: bool) -> BlockStats:
        return packed_hamming_block_stats(self.query[start:stop], self.database, self.num_bits,
                                          relevance.pairs(start, stop), ks, drop_last_item, self.backend)


class _CosineDistances:
    kind = "cosine"

    def __init__(self, query: torch.Tensor, database: torch.Tensor):
        self.query = query.detach().cpu().double().numpy()
        self.database = database.detach().cpu().double().numpy()
        qn = np.sqrt((self.query * self.query).sum(axis=1))
        dn = np.sqrt((self.database * self.database).sum(axis=1))
        self.query_norm = np.where(qn > 0, qn, 1.0)
        self.database_norm = np.where(dn > 0, dn, 1.0)
        self.num_queries, self.num_database = len(self.query), len(self.database)

    def elements_per_query(self, relevance: Relevance) -> int:
        """A dense ``(B, N)`` similarity block: ``N`` per query."""
        return self.num_database

    def block_stats(self, start: int, stop: int, relevance: Relevance, ks, drop_last_item: bool) -> BlockStats:
        sims = (self.query[start:stop] @ self.database.T) / (self.query_norm[start:stop, None]
                                                              * self.database_norm[None, :])
        return sorted_block_stats(-sims, relevance.block(start, stop), ks, drop_last_item)


def _evaluate(source, relevance: Relevance, *, metrics, topk, drop_last_item, map_norm, zero_relevant, radius,
              empty_radius, block_elements, num_threads) -> dict[str, Any]:
    names, ks = _parse_metrics(metrics, topk)
    if map_norm not in MAP_NORMS:
        raise ContractError(f"map_norm must be one of {MAP_NORMS}, found {map_norm!r}")
    if zero_relevant not in ZERO_RELEVANT:
        raise ContractError(f"zero_relevant must be one of {ZERO_RELEVANT}, found {zero_relevant!r}")
    if empty_radius not in EMPTY_RADIUS:
        raise ContractError(f"empty_radius must be one of {EMPTY_RADIUS}, found {empty_radius!r}")
    nq, nd = source.num_queries, source.num_database
    threads = num_threads or torch.get_num_threads()
    block = max(1, int(block_elements) // max(source.elements_per_query(relevance), 1))
    if threads > 1:  # a few blocks per thread, so that threads share the work evenly
        block = min(block, max(1, -(-nq // (4 * threads))))
    starts = list(range(0, nq, block))
    want_radius = source.kind == "hamming" and bool(names & {"pr_curve", "precision_radius"})

    def run(start: int) -> tuple[BlockStats, RadiusAccumulator | None]:
        stop = min(start + block, nq)
        stats = source.block_stats(start, stop, relevance, ks, drop_last_item)
        acc = None
        if want_radius:  # reduce the (B, L+1) histograms per block so memory stays bounded
            acc = RadiusAccumulator(source.num_bits, radius)
            acc.add(stats.hist, stats.hist_rel)
        stats.hist = stats.hist_rel = None
        return stats, acc

    if threads > 1 and len(starts) > 1:
        with ThreadPoolExecutor(min(threads, len(starts))) as pool:
            done = list(pool.map(run, starts))
    else:
        done = [run(s) for s in starts]
    parts = [stats for stats, _ in done]

    def cat(get) -> np.ndarray:
        return np.concatenate([get(p) for p in parts]) if parts else np.zeros(0)

    num_rel = cat(lambda p: p.num_relevant)
    has_rel = num_rel > 0
    safe_r = np.maximum(num_rel, 1.0)
    denom = nq if zero_relevant == "count_as_zero" else int(has_rel.sum())

    def mean(values: np.ndarray) -> float:
        return float(values[has_rel].sum() / denom) if denom else 0.0

    result: dict[str, Any] = {
        "kind": source.kind,
        "num_queries": nq,
        "num_database": nd - (1 if drop_last_item and nd else 0),
        "no_relevant_queries": int((~has_rel).sum()),
        "zero_relevant": zero_relevant,
        "drop_last_item": bool(drop_last_item),
        "map": mean(cat(lambda p: p.ap_sum) / safe_r),
        "map_tie_aware": mean(cat(lambda p: p.ap_tie_sum) / safe_r),
    }
    if ks:
        result["map_at_k_norm"] = map_norm
    for k in ks:
        hits = cat(lambda p: p.hits[k])
        ap_k = cat(lambda p: p.ap_sum_k[k])
        ap_tie_k = cat(lambda p: p.ap_tie_sum_k[k])
        if "map@k" in names or k in topk:
            if map_norm == "hits_in_topk":
                result[f"map@{k}"] = mean(np.where(hits > 0, ap_k / np.maximum(hits, 1.0), 0.0))
            else:
                norm = np.minimum(num_rel, k) if map_norm == "min_k_R" else num_rel
                result[f"map@{k}"] = mean(ap_k / np.maximum(norm, 1.0))
                result[f"map@{k}_tie_aware"] = mean(ap_tie_k / np.maximum(norm, 1.0))
        if "precision@k" in names:
            result[f"precision@{k}"] = mean(hits / k)
            result[f"precision@{k}_tie_aware"] = mean(cat(lambda p: p.hits_tie[k]) / k)
        if "recall@k" in names:
            result[f"recall@{k}"] = mean(hits / safe_r)
            result[f"recall@{k}_tie_aware"] = mean(cat(lambda p: p.hits_tie[k]) / safe_r)
    if want_radius:
        radius_acc = RadiusAccumulator(source.num_bits, radius)
        for _, acc in done:  # merged in query order: deterministic sums whatever the thread count
            radius_acc.merge(acc)
        if "pr_curve" in names:
            result["pr_curve"] = radius_acc.curve(has_rel_only=zero_relevant == "exclude")
        if "precision_radius" in names:
            result.update(radius_acc.at_radius(empty_radius, has_rel_only=zero_relevant == "exclude"))
    return result
