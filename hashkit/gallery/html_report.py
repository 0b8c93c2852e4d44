"""One HTML page per run: training curves, mAP table, PR and precision@k plots, distance histograms, bit
balance and the retrieval galleries, with every picture written as a PNG beside it.

:func:`write_run_report` reads the run directory (:func:`hashkit.runs.load_run` per code length, the codes
of :mod:`hashkit.gallery.run_codes`, ``L{bits}/metrics.jsonl``) and writes into ``out``::

    report.html                       the page (relative links to the PNGs below; no scripts, no network)
    gallery_L{bits}.png               retrieval gallery per code length (hashkit.gallery.retrieval_gallery)
    training.png                      loss (and evaluation score) against the step
    pr_{kind}.png, precision_at_k_{kind}.png   per database kind the run scored (encoded / learned)
    distances.png, bit_balance.png    same- vs different-class Hamming distances; fraction of +1 per bit

The figures are computed again from the run's codes by the registered metric components (``map``,
``precision@k``, ``pr_curve``, ``precision_radius``: :func:`report_metrics`, scored like ``[eval] metrics``
with the run's ``eval.drop_last_item``; ties by database index and tie-aware), so the page needs only the run
directory.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Sequence

import attrs

from hashkit.gallery.retrieval_gallery import GalleryOptions

#: precision@k cut-offs of the report (those above the database size are dropped)
TOPK = (1, 5, 10, 20, 50, 100, 200)


@attrs.define
class LengthReport:
    code_length: int
    gallery: str
    scores: dict[str, dict[str, Any]]  # by database kind
    gallery_kind: str
    num_query: int
    num_database: int


def read_metrics_log(path: Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (unreadable lines are skipped: a run may have been killed mid-line)."""
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def report_metrics(recipe, database_size: int) -> list[tuple[str, Any]]:
    """The page's metric components, built through the registry as ``[eval] metrics`` are: ``map``,
    ``precision@k`` at the :data:`TOPK` cut-offs that fit the database, ``pr_curve`` and ``precision_radius``
    (radius 2), with the recipe's ``eval.drop_last_item``."""
    from hashkit.evaluation.scoring import metric_set
    from hashkit.recipe.coerce import checked_component_ref

    topk = [k for k in TOPK if k <= database_size]
    tables = ["map", *([{"name": "precision@k", "k": topk}] if topk else []), "pr_curve", "precision_radius"]
    refs = [checked_component_ref("metric", table, f"report metrics[{i}]") for i, table in enumerate(tables)]
    return metric_set(refs, drop_last_item=recipe.eval.drop_last_item)


def score_kinds(codes, recipe) -> dict[str, dict[str, Any]]:
    from hashkit.evaluation.scoring import score
    from hashkit.interfaces import RetrievalProblem

    out = {}
    for kind, (db, db_labels) in codes.kinds.items():
        problem = RetrievalProblem(query=codes.query, database=db, query_labels=codes.query_labels,
                                   database_labels=db_labels)
        out[kind] = score(problem, report_metrics(recipe, len(db)))
    return out


def _table(reports: Sequence[LengthReport]) -> str:
    heads = ["bits", "database", "queries", "database size", "mAP", "mAP tie-aware", "P@10", "P@100",
             "P (radius 2)"]
    body = []
    for rep in reports:
        for kind, s in rep.scores.items():
            cells = [rep.code_length, kind, s.get("num_queries"), s.get("num_database"), s.get("map"),
                     s.get("map_tie_aware"), s.get("precision@10"), s.get("precision@100"),
                     s.get("precision@radius2")]
            body.append("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in cells) + "</tr>")
    return ("<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in heads) + "</tr></thead><tbody>"
            + "".join(body) + "</tbody></table>")


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape(str(value))


def _figure(name: str | None, caption: str) -> str:
    if not name:
        return ""
    return (f'<figure><img src="{html.escape(name)}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}figure{display:inline-block;margin:0 1em 1em 0;vertical-align:top}
figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:90%;color:#555}pre{background:#f7f7f7;padding:1em}"""


def write_run_report(run_dir: Path, out: Path, *, queries: int = 8, query_images: Sequence[Path] = (),
                     database: str = "auto", code_lengths: Sequence[int] | None = None,
                     options: GalleryOptions = GalleryOptions(), report: bool = True, log=print) -> Path | None:
    """Write the galleries, plots and ``report.html`` of ``run_dir`` into ``out``; returns the page's path
    (``report=False``: the galleries only, returns ``None``)."""
    from hashkit.assemble import build_dataset
    from hashkit.atomic_io import atomic_write_png, atomic_write_text
    from hashkit.errors import CheckpointError
    from hashkit.evaluation.distance_histogram import bit_balance, distance_histograms
    from hashkit.evaluation.plots import (plot_bit_balance, plot_distance_histograms, plot_pr_curves,
                                          plot_precision_at_k, plot_training_curves)
    from hashkit.gallery.retrieval_gallery import dataset_rows, image_rows, render_gallery, spread_indices
    from hashkit.gallery.run_codes import load_run_codes
    from hashkit.runs import load_run, run_code_lengths
    from hashkit.training.run_dir import length_dir

    run_dir, out = Path(run_dir), Path(out)
    lengths = list(code_lengths or run_code_lengths(run_dir))
    if not lengths:
        raise CheckpointError(f"{run_dir}: no checkpoint found (no L<bits>/checkpoint.safetensors)")
    out.mkdir(parents=True, exist_ok=True)
    reports: list[LengthReport] = []
    histograms, balance, records = {}, {}, {}
    data = recipe = None
    for length in lengths:
        loaded = load_run(run_dir, length)
        recipe = loaded.recipe
        data = data or build_dataset(recipe)
        codes = load_run_codes(loaded, data, database)  # type: ignore[arg-type]
        section = recipe.data.eval_transform
        rows = dataset_rows(loaded.model, codes, spread_indices(len(codes.query), queries), section, options)
        rows += image_rows(loaded.model, codes, query_images, section, options)
        gallery = f"gallery_L{length}.png"
        if rows:
            atomic_write_png(out / gallery, render_gallery(rows, codes, recipe.name, options))
            log(f"wrote {out / gallery} ({len(rows)} queries)")
        if not report:
            continue
        scores = score_kinds(codes, recipe)
        reports.append(LengthReport(length, gallery if rows else "", scores, codes.database_kind,
                                    len(codes.query), len(codes.database)))
        histograms[length] = distance_histograms(codes.query, codes.database, codes.query_labels,
                                                 codes.database_labels)
        balance[length] = {"query": bit_balance(codes.query), f"{codes.database_kind} database":
                           bit_balance(codes.database)}
        records[length] = read_metrics_log(length_dir(run_dir, length) / "metrics.jsonl")
    if not report:
        return None
    title = f"{recipe.name} on {data.name} ({data.protocol})"
    figures = {"training": plot_training_curves(records, out / "training.png", title=f"{recipe.name}: training"),
               "distances": plot_distance_histograms(histograms, out / "distances.png",
                                                     title=f"{recipe.name}: query-database Hamming distances"),
               "balance": plot_bit_balance(balance, out / "bit_balance.png", title=f"{recipe.name}: bit balance")}
    kinds = list(dict.fromkeys(k for r in reports for k in r.scores))
    for kind in kinds:
        per_bits = {r.code_length: r.scores[kind] for r in reports if kind in r.scores}
        figures[f"pr_{kind}"] = plot_pr_curves(per_bits, out / f"pr_{kind}.png", title=f"{recipe.name} ({kind})")
        figures[f"pk_{kind}"] = plot_precision_at_k(per_bits, out / f"precision_at_k_{kind}.png",
                                                    title=f"{recipe.name} ({kind})")
    def name(key: str) -> str | None:
        return figures[key].name if figures.get(key) else None

    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p>run <code>{html.escape(str(run_dir.resolve()))}</code>; recipe <b>{html.escape(recipe.name)}</b>"
             f" ({html.escape(recipe.description)}); training protocol {html.escape(recipe.protocol.name)}.</p>",
             "<h2>Training</h2>", _figure(name("training"), "training loss (metrics.jsonl)") or
             "<p>No training log (metrics.jsonl) found.</p>",
             "<h2>Retrieval scores</h2>",
             "<p>mAP@all with ties by database index and tie-aware; precision@k (ties by index); precision "
             "of the Hamming ball of radius 2 (empty balls count as 0)"
             + ("; last database item dropped (official parity)" if recipe.eval.drop_last_item else "") + ".</p>",
             _table(reports)]
    parts += [_figure(name(f"pr_{k}"), f"precision-recall over Hamming radii, {k} database") for k in kinds]
    parts += [_figure(name(f"pk_{k}"), f"precision@k, {k} database") for k in kinds]
    parts += ["<h2>Codes</h2>",
              _figure(name("distances"), "Hamming distances of same-class vs different-class query-database pairs "
                                         "(gallery database)"),
              _figure(name("balance"), "fraction of +1 per bit (0.5 = balanced)"),
              "<h2>Retrieval gallery</h2>"]
    parts += [_figure(r.gallery, f"{r.code_length} bits: top {options.k} of {r.num_database} {r.gallery_kind} "
                                 "database codes per query (green frame: same class, red: other)")
              for r in reports if r.gallery]
    report_txt = run_dir / "report.txt"
    if report_txt.is_file():
        parts += ["<h2>Training report</h2>", f"<pre>{html.escape(report_txt.read_text(encoding='utf-8'))}</pre>"]
    page = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
            f"{html.escape(title)}</title><style>{STYLE}</style></head><body>" + "\n".join(parts) + "</body></html>\n")
    path = out / "report.html"
    atomic_write_text(path, page)
    return path
