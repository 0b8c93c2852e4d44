"""Bench plots (PNG, matplotlib Agg): per dataset and protocol

- ``map_vs_bits``: the table's figure against code length, one line per method (error bars: std over seeds);
- ``pr``: precision-recall curves over Hamming radii of every method at one code length, overlaid;
- ``precision_at_k``: precision@k against k of every method at one code length.

Curves average the per-seed curves point by point (radius by radius, k by k).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from hashkit.bench.tables import Table, metric_label
from hashkit.evaluation.plots import plt, pr_axes, precision_at_k_axes, save_figure


def _name(table: Table) -> str:
    return f"{table.dataset}_{table.protocol.replace('@', '-at-')}"


#: figure size: the plot area of a single run's plot plus room for the methods' legend on the right
FIGSIZE = (7.5, 4)


#: markers of the 1st, 2nd, ... group of ten methods: the colour cycle has ten colours, a bench often more methods
MARKERS = ("o", "s", "^", "D", "v", "P")


def _style(i: int) -> dict[str, Any]:
    """Colour and marker of the ``i``-th method: no two of the first 60 methods look alike."""
    return {"color": f"C{i % 10}", "marker": MARKERS[(i // 10) % len(MARKERS)]}


def _legend_outside(ax) -> None:
    """The methods' legend to the right of the axes, where it hides no curve (a bench overlays many)."""
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def plot_map_vs_bits(table: Table, directory: Path, scale: float) -> Path | None:
    fig, ax = plt.subplots(figsize=FIGSIZE)
    drawn = False
    for i, row in enumerate(table.rows):
        points = [(b, v.mean, v.std or 0.0) for b, v in row.values.items() if v.mean is not None]
        if not points:
            continue
        xs, ys, err = zip(*points)
        ax.errorbar(xs, [y * scale for y in ys], yerr=[e * scale for e in err], capsize=3, **_style(i),
                    label=f"{row.method} ({row.database})")
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xticks(list(table.code_lengths))
    ax.set_xlabel("code length (bits)")
    ax.set_ylabel(metric_label(table.metric) + (f" × {scale:g}" if scale != 1 else ""))
    ax.grid(alpha=0.3)
    _legend_outside(ax)
    ax.set_title(table.title, fontsize=9)
    return save_figure(fig, directory / f"map_vs_bits_{_name(table)}.png")


def _curves(cells: list[dict[str, Any]], table: Table, bits: int, model: str, method: str):
    return [c["results"][model][table.protocol][c["native"]] for c in cells
            if c["dataset"] == table.dataset and c["method"] == method and c["code_length"] == bits
            and table.protocol in c["results"][model]]


def plot_pr(table: Table, cells: list[dict[str, Any]], bits: int, model: str, directory: Path) -> Path | None:
    fig, ax = plt.subplots(figsize=FIGSIZE)
    drawn = False
    for i, row in enumerate(table.rows):
        found = [r["pr_curve"] for r in _curves(cells, table, bits, model, row.method) if r.get("pr_curve")]
        if not found:
            continue
        precision = np.mean([c["precision"] for c in found], axis=0)
        recall = np.mean([c["recall"] for c in found], axis=0)
        ax.plot(recall, precision, markersize=3, **_style(i), label=f"{row.method} ({row.database})")
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    pr_axes(ax, f"{table.dataset}, {table.protocol}: precision-recall at {bits} bits", fontsize=8)
    _legend_outside(ax)
    return save_figure(fig, directory / f"pr_{_name(table)}_L{bits}.png")


def plot_precision_at_k(table: Table, cells: list[dict[str, Any]], bits: int, model: str,
                        directory: Path) -> Path | None:
    fig, ax = plt.subplots(figsize=FIGSIZE)
    drawn = False
    for i, row in enumerate(table.rows):
        runs = _curves(cells, table, bits, model, row.method)
        ks = sorted({int(m.group(1)) for r in runs for key in r if (m := re.fullmatch(r"precision@(\d+)", key))})
        if not ks:
            continue
        ys = [np.mean([r[f"precision@{k}"] for r in runs if f"precision@{k}" in r]) for k in ks]
        ax.plot(ks, ys, **_style(i), label=f"{row.method} ({row.database})")
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xscale("log")
    precision_at_k_axes(ax, f"{table.dataset}, {table.protocol}: precision@k at {bits} bits", fontsize=8)
    _legend_outside(ax)
    return save_figure(fig, directory / f"precision_at_k_{_name(table)}_L{bits}.png")
