"""Options shared by the built-in ranking metrics, and their request to the ranking engine (private: not a
component module)."""

from __future__ import annotations

from typing import Any, Iterable, Literal

import attrs

from hashkit.interfaces import RankingMetric, RankingRequest


@attrs.frozen
class RankingOptions:
    #: official SEMICON/DeepHash-pytorch parity: drop the last-ranked database item
    drop_last_item: bool = False
    #: a query without relevant items: AP 0 and counted ("count_as_zero") or left out of the mean ("exclude")
    zero_relevant: Literal["count_as_zero", "exclude"] = "count_as_zero"
    #: relevant = shares a label ("shared_label") or label dot product > 0 ("dot", the official rule)
    relevance_rule: Literal["shared_label", "dot"] = "shared_label"


def positive_ks(instance, attribute, value) -> None:
    """attrs validator: a non-empty tuple of positive cut-offs."""
    if not value or any(int(k) <= 0 for k in value):
        raise ValueError(f"{attribute.name} must be a non-empty list of positive integers, found {value!r}")


COUNT_KEYS = ("num_queries", "num_database", "no_relevant_queries")


class EngineMetric(RankingMetric):
    """A built-in ranking metric: engine ``quantities`` at ``topk`` with the config's shared options, and
    the result keys ``keys`` (renamed ``prefix + key`` when ``prefix`` is set) plus the query counts."""

    def __init__(self, cfg: RankingOptions, keys: Iterable[str], *, quantities: tuple[str, ...] = (),
                 topk: tuple[int, ...] = (), kind: str | None = None, prefix: str = "", **options: Any):
        self.cfg, self.keys, self.prefix = cfg, tuple(keys), prefix
        shared = {"drop_last_item": cfg.drop_last_item, "zero_relevant": cfg.zero_relevant,
                  "relevance_rule": cfg.relevance_rule, **options}
        self._request = RankingRequest(quantities=quantities, topk=tuple(topk), kind=kind,
                                       options=tuple(sorted(shared.items())))

    def request(self) -> RankingRequest:
        return self._request

    def select(self, result: dict[str, Any]) -> dict[str, Any]:
        out = {self.prefix + k: result[k] for k in self.keys if k in result}
        out.update({k: result[k] for k in COUNT_KEYS})
        return out
