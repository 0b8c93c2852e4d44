"""PNG plots of evaluation results (matplotlib, Agg backend; no display needed).

- :func:`plot_pr_curves`: precision-recall curves over Hamming radii, one line per code length;
- :func:`plot_precision_at_k`: precision@k against k, one line per code length.

Both take ``{bits: result}`` as returned by :func:`hashkit.evaluation.evaluate` and write a PNG.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_pr_curves(results: Mapping[int, Mapping[str, Any]], path: str | Path, title: str = "") -> Path | None:
    """Precision against recall of Hamming balls (``result["pr_curve"]``); returns the path, or None without data."""
    series = {bits: res["pr_curve"] for bits, res in sorted(results.items()) if res.get("pr_curve")}
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(5, 4))
    for bits, curve in series.items():
        ax.plot(curve["recall"], curve["precision"], marker=".", label=f"{bits} bits")
    pr_axes(ax, title or "precision-recall by Hamming radius")
    return save_figure(fig, path)


def plot_precision_at_k(results: Mapping[int, Mapping[str, Any]], path: str | Path, title: str = "") -> Path | None:
    """Precision@k (stable ties) against k from the ``precision@K`` keys; returns the path, or None without data."""
    fig, ax = plt.subplots(figsize=(5, 4))
    drawn = False
    for bits, res in sorted(results.items()):
        points = sorted((int(m.group(1)), v) for key, v in res.items()
                        if (m := re.fullmatch(r"precision@(\d+)", key)))
        if points:
            ax.plot([k for k, _ in points], [v for _, v in points], marker="o", label=f"{bits} bits")
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    precision_at_k_axes(ax, title or "precision@k")
    return save_figure(fig, path)


def pr_axes(ax, title: str, fontsize: int | None = None) -> None:
    """Labels, limits, grid, legend and title of a precision-recall plot over Hamming radii."""
    ax.set_xlabel("recall (Hamming radius r = 0..L)")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    _unit_axes(ax, title, fontsize)


def precision_at_k_axes(ax, title: str, fontsize: int | None = None) -> None:
    """Labels, limits, grid, legend and title of a precision@k plot."""
    ax.set_xlabel("k (top-k retrieved)")
    ax.set_ylabel("precision@k")
    _unit_axes(ax, title, fontsize)


def _unit_axes(ax, title: str, fontsize: int | None) -> None:
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=fontsize)
    ax.set_title(title, fontsize=fontsize)


def save_figure(fig, path: str | Path) -> Path:
    """Write ``fig`` as a PNG (120 dpi, tight layout; atomically) and close it."""
    import io

    from hashkit.atomic_io import atomic_write_bytes

    path = Path(path)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path
