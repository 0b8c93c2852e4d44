"""Benchmarks as a product: bench files, resumable sharded runs, tables and plots (docs/benchmarks.md).

- :mod:`hashkit.bench.spec`: the bench file (methods x datasets x code lengths x seeds) and its cells;
- :mod:`hashkit.bench.runner`: :func:`run_bench` (resume, shards, progress);
- :mod:`hashkit.bench.cell_dir`: one directory per cell, its lock and files;
- :mod:`hashkit.bench.tables`, :mod:`hashkit.bench.formats`, :mod:`hashkit.bench.plots`,
  :mod:`hashkit.bench.report`: ``hashkit bench report``.
"""

from hashkit.bench.report import write_report
from hashkit.bench.runner import run_bench
from hashkit.bench.spec import load_bench

__all__ = ["load_bench", "run_bench", "write_report"]
