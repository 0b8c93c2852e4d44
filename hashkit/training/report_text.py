"""The text form of a training report: one mAP table row per code length.

Columns: for each database kind scored (``learned``, ``encoded``, ``descriptor``) the mAP of the last model,
and, when ``train.selection`` is not ``last``, the selected model's mAP beside it, labelled with what selected
it (``best_val``, or ``best_query (test-selected)`` for the official protocol).
"""

from __future__ import annotations

from typing import Any

SELECTION_LABELS = {"best_val": "best_val", "best_query": "best_query (test-selected)"}


def report_table(report: dict[str, Any]) -> str:
    """Header lines naming recipe, dataset, protocol and selection, then the table."""
    results = report["results"]
    key = "map_tie_aware" if report.get("ties") == "tie_aware" else "map"
    selection = report.get("selection", "last")
    kinds: list[str] = []
    for res in results.values():
        for kind in res["last"]:
            if kind not in kinds:
                kinds.append(kind)
    columns = []
    for kind in kinds:
        columns.append((f"{kind} mAP (last)" if selection != "last" else f"{kind} mAP", "last", kind))
        if selection != "last":
            columns.append((f"{kind} mAP ({SELECTION_LABELS.get(selection, selection)})", "selected", kind))
    header = ["bits", *(c[0] for c in columns)]
    rows = []
    for length, res in results.items():
        row = [str(length)]
        for _, which, kind in columns:
            value = res.get(which, {}).get(kind, {}).get(key)
            row.append("-" if value is None else f"{value:.4f}")
        if selection != "last":
            row[0] += f" (round {res.get('selected_round')})"
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return " | ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    lines = [
        f"recipe {report['recipe']} on {report['dataset']} ({report['protocol']}); "
        f"training protocol {report['training_protocol']}; ties: {report.get('ties', 'index')}"
        + ("; last database item dropped (official parity)" if report.get("drop_last_item") else ""),
        line(header),
        "-+-".join("-" * w for w in widths),
        *(line(r) for r in rows),
    ]
    return "\n".join(lines)
