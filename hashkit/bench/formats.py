"""Bench tables as Markdown, CSV, LaTeX (booktabs) and JSON.

- Markdown and LaTeX show ``mean ± std`` (the std only with several seeds) on the bench's display scale
  (``scale``, ``decimals``: mAP × 100 with one decimal by default), the best mean of each column in bold, and
  under a method with published numbers a ``published`` row and a ``difference`` (measured − published) row.
- CSV and JSON keep full precision on the measured scale (mAP in [0, 1]): CSV one line per (dataset,
  protocol, method, code length); JSON the tables with every value.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Sequence

from hashkit.bench.tables import Table, Value

DATABASE_NOTE = {
    "learned": "learned: the seen database part is the codes the method learned (ADSH family)",
    "label": "label: the seen database part is the codes the method derives from labels",
    "encoded": "encoded: the database is encoded by the network",
}
SELECTION_NOTE = {"last": "the last model", "best_val": "the best model on a validation split carved from training",
                  "best_query": "the best model on the test queries (test-selected, as the reference code)"}


def _number(x: float, scale: float, decimals: int, signed: bool = False) -> str:
    text = f"{x * scale:+.{decimals}f}" if signed else f"{x * scale:.{decimals}f}"
    return text.replace("-", "−") if signed else text


def _cell(v: Value, scale: float, decimals: int, bold: tuple[str, str]) -> str:
    if v.mean is None:
        return "–"
    text = _number(v.mean, scale, decimals)
    if v.best:
        text = f"{bold[0]}{text}{bold[1]}"
    if v.std is not None:
        text += f" ± {_number(v.std, scale, decimals)}"
    return text


def _notes(table: Table, scale: float) -> list[str]:
    kinds = sorted({r.database for r in table.rows})
    selections = sorted({r.selection for r in table.rows})
    seeds = len(table.seeds)
    lines = [f"{'mean ± sample std over ' if seeds > 1 else ''}{seeds} seed{'s' if seeds > 1 else ''}"
             f"{f'; values × {scale:g}' if scale != 1 else ''}; best mean per column in bold",
             "database: " + "; ".join(DATABASE_NOTE.get(k, k) for k in kinds),
             "model: " + "; ".join(SELECTION_NOTE.get(s, s) for s in selections)]
    lines += [f"published: {s}" for s in table.sources]
    return lines


def _extra_rows(values: dict[int, Value], lengths, scale: float, decimals: int) -> list[tuple[str, list[str]]]:
    if not any(v.published is not None for v in values.values()):
        return []
    pub = [_number(values[b].published, scale, decimals) if values[b].published is not None else "–" for b in lengths]
    diff = [_number(values[b].difference, scale, decimals, signed=True) if values[b].difference is not None else "–"
            for b in lengths]
    return [("published", pub), ("difference", diff)]


def to_markdown(tables: Sequence[Table], *, title: str = "", scale: float = 100.0, decimals: int = 1) -> str:
    out = [f"# {title}", ""] if title else []
    for t in tables:
        out += [f"## {t.title}", "", "| method | database | " + " | ".join(f"{b} bits" for b in t.code_lengths) + " |",
                "|---|---|" + "---:|" * len(t.code_lengths)]
        for row in t.rows:
            cells = [_cell(row.values[b], scale, decimals, ("**", "**")) for b in t.code_lengths]
            out.append(f"| {row.method} | {row.database} | " + " | ".join(cells) + " |")
            for name, values in _extra_rows(row.values, t.code_lengths, scale, decimals):
                out.append(f"| ↳ {name} | | " + " | ".join(values) + " |")
        out += [""] + [f"- {line}" for line in _notes(t, scale)] + [""]
    return "\n".join(out)


CSV_FIELDS = ("dataset", "protocol", "metric", "method", "database", "selection", "code_length", "mean", "std",
              "seeds", "best", "published", "difference", "published_source")


def to_csv(tables: Sequence[Table]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for t in tables:
        for row in t.rows:
            for bits in t.code_lengths:
                v = row.values[bits]
                writer.writerow({"dataset": t.dataset, "protocol": t.protocol, "metric": t.metric,
                                 "method": row.method, "database": row.database, "selection": row.selection,
                                 "code_length": bits, "mean": _plain(v.mean), "std": _plain(v.std), "seeds": v.n,
                                 "best": int(v.best), "published": _plain(v.published),
                                 "difference": _plain(v.difference), "published_source": v.source or ""})
    return buf.getvalue()


def _plain(x: float | None) -> str:
    return "" if x is None else repr(float(x))


def to_json(tables: Sequence[Table], *, bench: str = "", model: str = "selected") -> str:
    def value(v: Value) -> dict[str, Any]:
        return {"mean": v.mean, "std": v.std, "seeds": v.n, "best": v.best, "published": v.published,
                "difference": v.difference, "published_source": v.source}

    data = {"format": "hashkit-bench-report", "bench": bench, "model": model, "tables": [
        {"dataset": t.dataset, "protocol": t.protocol, "metric": t.metric, "code_lengths": list(t.code_lengths),
         "seeds": list(t.seeds), "sources": list(t.sources),
         "rows": [{"method": r.method, "database": r.database, "selection": r.selection,
                   "values": {str(b): value(r.values[b]) for b in t.code_lengths}} for r in t.rows]}
        for t in tables]}
    return json.dumps(data, indent=1, allow_nan=False) + "\n"


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "±": r"$\pm$", "×": r"$\times$", "−": "$-$", "–": "--", "↳": ""}


def latex_escape(text: str) -> str:
    """Text for LaTeX: special characters escaped; other non-ASCII characters by their ASCII decomposition
    (pdflatex has no glyph for most of them)."""
    import unicodedata

    out = []
    for ch in str(text):
        if ch in _LATEX_ESCAPES:
            out.append(_LATEX_ESCAPES[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            out.append(unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode())
    return "".join(out)


def _latex_cell(v: Value, scale: float, decimals: int) -> str:
    if v.mean is None:
        return "--"
    text = _number(v.mean, scale, decimals)
    if v.best:
        text = r"\textbf{" + text + "}"
    if v.std is not None:
        text += r"{\scriptsize\,$\pm$" + _number(v.std, scale, decimals) + "}"
    return text


def to_latex(tables: Sequence[Table], *, title: str = "", scale: float = 100.0, decimals: int = 1) -> str:
    """A standalone document (article + booktabs) with one table per dataset and protocol."""
    out = [r"\documentclass{article}", r"\usepackage{booktabs}", r"\begin{document}"]
    if title:
        out.append(r"\section*{" + latex_escape(title) + "}")
    for t in tables:
        out += [r"\begin{table}[ht]", r"\centering", r"\small",
                r"\caption{" + latex_escape(t.title + ". " + "; ".join(_notes(t, scale))) + "}",
                r"\begin{tabular}{ll" + "r" * len(t.code_lengths) + "}", r"\toprule",
                "Method & Database & " + " & ".join(f"{b} bits" for b in t.code_lengths) + r" \\", r"\midrule"]
        for row in t.rows:
            cells = [_latex_cell(row.values[b], scale, decimals) for b in t.code_lengths]
            out.append(f"{latex_escape(row.method)} & {latex_escape(row.database)} & " + " & ".join(cells) + r" \\")
            for name, values in _extra_rows(row.values, t.code_lengths, scale, decimals):
                out.append(r"\quad " + name + " & & " + " & ".join(latex_escape(x) for x in values) + r" \\")
        out += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    out.append(r"\end{document}")
    return "\n".join(out) + "\n"
