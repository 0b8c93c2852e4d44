"""``hashkit bench report DIR``: the tables and plots of a bench output folder.

Reads ``DIR/bench.json`` (the definition: method order, display options) and every finished ``cell.json``
(unfinished cells are left out and counted), and writes into ``DEST`` (default ``DIR/report``)::

    report.md   report.csv   report.tex   report.json   plots/*.png

Nothing is retrained or re-encoded: the cells hold every number (and the run directories the codes).
"""

from __future__ import annotations

from pathlib import Path

import attrs

from hashkit.atomic_io import atomic_write_text
from hashkit.bench import formats, plots
from hashkit.bench.cell_dir import finished_cells, read_json
from hashkit.bench.spec import BenchFile
from hashkit.bench.tables import build_tables
from hashkit.errors import CheckpointError
from hashkit.recipe.coerce import build_config


@attrs.frozen
class BenchReport:
    directory: Path
    files: tuple[Path, ...]
    finished: int
    expected: int
    markdown: str


def load_definition(out: Path) -> tuple[str, BenchFile]:
    path = Path(out) / "bench.json"
    if not path.is_file():
        raise CheckpointError(f"{out} is not a hashkit bench output folder (no bench.json); run `hashkit bench "
                              "FILE --out DIR` first")
    data = read_json(path, "bench definition")
    return data.get("name", ""), build_config(BenchFile, data.get("definition", {}), file=str(path))


def write_report(out: str | Path, dest: str | Path | None = None, *, model: str | None = None,
                 plots_enabled: bool = True) -> BenchReport:
    out = Path(out)
    name, file = load_definition(out)
    model = model or file.model
    cells = finished_cells(out)
    expected = len(file.methods) * len(file.datasets) * len(file.seeds) * len(file.code_lengths)
    if not cells:
        raise CheckpointError(f"{out}: no finished bench cell yet (0 of {expected})")
    dest = Path(dest) if dest is not None else out / "report"
    tables = build_tables(file, cells, model)
    title = f"hashkit bench {name}" + (f" ({len(cells)} of {expected} cells finished)" if len(cells) < expected else "")
    markdown = formats.to_markdown(tables, title=title, scale=file.scale, decimals=file.decimals)
    written = []
    for filename, text in (("report.md", markdown), ("report.csv", formats.to_csv(tables)),
                           ("report.tex", formats.to_latex(tables, title=title, scale=file.scale,
                                                           decimals=file.decimals)),
                           ("report.json", formats.to_json(tables, bench=name, model=model))):
        atomic_write_text(dest / filename, text)
        written.append(dest / filename)
    if plots_enabled:
        for table in tables:
            bits = file.curves_at or max(table.code_lengths)
            for path in (plots.plot_map_vs_bits(table, dest / "plots", file.scale),
                         plots.plot_pr(table, cells, bits, model, dest / "plots"),
                         plots.plot_precision_at_k(table, cells, bits, model, dest / "plots")):
                if path is not None:
                    written.append(path)
    return BenchReport(directory=dest, files=tuple(written), finished=len(cells), expected=expected,
                       markdown=markdown)
