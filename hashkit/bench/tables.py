"""Bench tables: per dataset and protocol, methods x code lengths, mean ± std over seeds, published numbers.

Each method is scored with its own database kind (:func:`hashkit.bench.runner.native_kind`: ``learned`` for
the ADSH family, ``label`` for label-derived protocols, ``encoded`` otherwise), which every row names. The best
mean of each column is marked (every method at the maximum). Published numbers come from the recipes'
``[[provenance.published]]`` entries (:class:`Published`) that match the table's dataset, protocol, seen
fraction and metric; values are stored on the scale of the measured ones (mAP in [0, 1]).
"""

from __future__ import annotations

import math
import re
import statistics
from typing import Any, Sequence

import attrs

from hashkit.bench.spec import BenchFile
from hashkit.errors import RecipeError
from hashkit.evaluation.open_set import PROTOCOLS as OPEN_SET_PROTOCOLS
from hashkit.recipe.coerce import build_config
from hashkit.recipe.schema import Published

#: table order of the protocols; "all" is the usual query-against-database protocol (no seen/unseen split)
PROTOCOL_ORDER = ("all", *OPEN_SET_PROTOCOLS)


def read_published(entries: Sequence[Any], where: str) -> list[Published]:
    """Validate a recipe's published entries; a malformed one is a one-line error naming the recipe."""
    if not isinstance(entries, (list, tuple)):
        raise RecipeError("expected an array of tables [[provenance.published]]", file=where,
                          key="provenance.published")
    return [build_config(Published, e if isinstance(e, dict) else {"source": e}, file=where,
                         key=f"provenance.published[{i}]") for i, e in enumerate(entries)]


@attrs.frozen
class Value:
    """One table cell: mean and sample std over seeds (None with one seed), the best mark, published value."""

    mean: float | None
    std: float | None
    n: int
    best: bool = False
    published: float | None = None
    source: str | None = None

    @property
    def difference(self) -> float | None:
        if self.mean is None or self.published is None:
            return None
        return self.mean - self.published


@attrs.frozen
class Row:
    method: str
    database: str
    values: dict[int, Value]
    selection: str = "last"


@attrs.frozen
class Table:
    dataset: str
    protocol: str
    metric: str
    code_lengths: tuple[int, ...]
    rows: tuple[Row, ...]
    seeds: tuple[int, ...]
    sources: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        where = "query against database" if self.protocol == "all" else self.protocol
        return f"{self.dataset}, {where}: {metric_label(self.metric)}"


def metric_label(metric: str) -> str:
    m = re.fullmatch(r"map@(\d+)", metric)
    if m:
        return f"mAP@{m.group(1)}"
    return {"map": "mAP@all", "map_tie_aware": "mAP@all (tie-aware)"}.get(metric, metric)


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = math.fsum(values) / len(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def _published_for(cells: list[dict[str, Any]], protocol: str, metric: str) -> dict[int, tuple[float, str]]:
    out: dict[int, tuple[float, str]] = {}
    for cell in cells:
        for entry in read_published(cell.get("published", []), cell.get("recipe_file", cell["recipe"])):
            if (entry.protocol != protocol or entry.metric != metric
                    or entry.dataset not in ("", cell["dataset_component"])
                    or abs(entry.seen_fraction - cell.get("seen_fraction", 1.0)) > 1e-9):
                continue
            for bits, value in entry.values.items():
                out.setdefault(int(bits), (float(value) / entry.scale, entry.source))
    return out


def build_tables(file: BenchFile, cells: list[dict[str, Any]], model: str | None = None) -> list[Table]:
    """One table per dataset and protocol, rows in the bench file's method order."""
    model = model or file.model
    datasets = [d.name for d in file.datasets] + sorted({c["dataset"] for c in cells} - {d.name for d in file.datasets})
    methods: list[str] = []
    for c in cells:  # bench.cells() order is dataset, method, seed, bits: first appearance keeps the method order
        if c["method"] not in methods:
            methods.append(c["method"])
    tables = []
    for dataset in datasets:
        mine = [c for c in cells if c["dataset"] == dataset]
        found = {p for c in mine for p in c["results"][model]}
        protocols = [p for p in PROTOCOL_ORDER if p in (file.protocols or found) and p in found]
        for protocol in protocols:
            rows, sources = [], []
            lengths = tuple(sorted({c["code_length"] for c in mine}))
            for method in methods:
                runs = [c for c in mine if c["method"] == method and protocol in c["results"][model]]
                if not runs:
                    continue
                native = runs[0]["native"]
                published = _published_for(runs, protocol, file.metric)
                values = {}
                for bits in lengths:
                    got = [c["results"][model][protocol][native].get(file.metric) for c in runs
                           if c["code_length"] == bits]
                    mean, std = _mean_std([float(v) for v in got if v is not None])
                    pub = published.get(bits)
                    values[bits] = Value(mean=mean, std=std, n=len(got), published=pub[0] if pub else None,
                                         source=pub[1] if pub else None)
                sources += [v.source for v in values.values() if v.source and v.source not in sources]
                rows.append(Row(method=method, database=native, values=values,
                                selection=runs[0]["selection"] if model == "selected" else "last"))
            rows = _mark_best(rows, lengths)
            seeds = tuple(sorted({c["seed"] for c in mine}))
            tables.append(Table(dataset=dataset, protocol=protocol, metric=file.metric, code_lengths=lengths,
                                rows=tuple(rows), seeds=seeds, sources=tuple(sources)))
    return tables


def _mark_best(rows: list[Row], lengths: tuple[int, ...]) -> list[Row]:
    best = {}
    for bits in lengths:
        means = [r.values[bits].mean for r in rows if r.values[bits].mean is not None]
        best[bits] = max(means) if means else None
    return [attrs.evolve(r, values={b: attrs.evolve(v, best=v.mean is not None and v.mean == best[b])
                                    for b, v in r.values.items()}) for r in rows]
