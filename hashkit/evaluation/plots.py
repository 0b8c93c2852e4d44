"""PNG plots of evaluation results (matplotlib, Agg backend; no display needed).

- :func:`plot_pr_curves`: precision-recall curves over Hamming radii, one line per code length;
- :func:`plot_precision_at_k`: precision@k against k, one line per code length;
- :func:`plot_distance_histograms`: Hamming distances of same-class vs different-class pairs, one panel per
  code length (``{bits: (same, different)}`` from :func:`hashkit.evaluation.distance_histogram.distance_histograms`);
- :func:`plot_bit_balance`: fraction of +1 per bit, one panel per code length (``{bits: {name: (L,) array}}``);
- :func:`plot_training_curves`: the loss (and evaluation scores) of ``metrics.jsonl`` records against the step,
  one line per code length.

The first two take ``{bits: result}`` as returned by :func:`hashkit.evaluation.evaluate`; all write a PNG and
return its path (``None`` when there is nothing to draw).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

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


def _panels(count: int, width: float = 4.0, height: float = 3.0):
    fig, axes = plt.subplots(1, count, figsize=(width * count, height), squeeze=False)
    return fig, axes[0]


def plot_distance_histograms(histograms: Mapping[int, tuple[np.ndarray, np.ndarray]], path: str | Path,
                             title: str = "") -> Path | None:
    """Per code length, the distribution (fraction of pairs) of the Hamming distance over same-class and over
    different-class pairs; well-trained codes separate the two."""
    if not histograms:
        return None
    fig, axes = _panels(len(histograms))
    for ax, (bits, (same, different)) in zip(axes, sorted(histograms.items())):
        r = np.arange(len(same))
        for counts, label, colour in ((same, "same class", "tab:green"), (different, "different class", "tab:red")):
            total = counts.sum()
            ax.bar(r, counts / total if total else counts, width=0.9, alpha=0.55, color=colour,
                   label=f"{label} ({total:,} pairs)")
        ax.set_xlabel("Hamming distance")
        ax.set_ylabel("fraction of pairs")
        ax.set_title(f"{bits} bits")
        ax.legend(fontsize=8)
    fig.suptitle(title or "Hamming distances of query-database pairs")
    return save_figure(fig, path)


def plot_bit_balance(balance: Mapping[int, Mapping[str, np.ndarray]], path: str | Path, title: str = "") -> Path | None:
    """Per code length, the fraction of codes with each bit = +1 (one bar group per named code set)."""
    if not balance:
        return None
    fig, axes = _panels(len(balance))
    for ax, (bits, sets) in zip(axes, sorted(balance.items())):
        width = 0.8 / max(len(sets), 1)
        for i, (name, frac) in enumerate(sets.items()):
            ax.bar(np.arange(len(frac)) + (i - (len(sets) - 1) / 2) * width, frac, width=width, label=name)
        ax.axhline(0.5, color="black", lw=0.8, ls="--")
        ax.set_ylim(0, 1)
        ax.set_xlabel("bit")
        ax.set_ylabel("fraction of +1")
        ax.set_title(f"{bits} bits")
        ax.legend(fontsize=8)
    fig.suptitle(title or "bit balance")
    return save_figure(fig, path)


def plot_training_curves(records: Mapping[int, Sequence[Mapping[str, Any]]], path: str | Path,
                         title: str = "") -> Path | None:
    """Training loss against the step from ``metrics.jsonl`` records (``event = "step"``), one line per code
    length, and the evaluation score (``event = "eval"``) on a second panel when the run logged any."""
    def series(rows, event, key):
        points = [(r["step"], r[key]) for r in rows
                  if r.get("event") == event and isinstance(r.get(key), (int, float)) and "step" in r]
        return [p[0] for p in points], [p[1] for p in points]

    losses = {bits: series(rows, "step", "loss") for bits, rows in sorted(records.items())}
    scores = {bits: series(rows, "eval", "score") for bits, rows in sorted(records.items())}
    losses = {b: s for b, s in losses.items() if s[0]}
    scores = {b: s for b, s in scores.items() if s[0]}
    if not losses:
        return None
    fig, axes = _panels(2 if scores else 1, width=5.0, height=3.5)
    for bits, (x, y) in losses.items():
        axes[0].plot(x, y, label=f"{bits} bits")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("training loss")
    axes[0].grid(alpha=0.3)
    axes[0].legend()
    if scores:
        for bits, (x, y) in scores.items():
            axes[1].plot(x, y, marker="o", label=f"{bits} bits")
        axes[1].set_xlabel("step")
        axes[1].set_ylabel("evaluation score (mAP)")
        axes[1].grid(alpha=0.3)
        axes[1].legend()
    fig.suptitle(title or "training")
    return save_figure(fig, path)


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
