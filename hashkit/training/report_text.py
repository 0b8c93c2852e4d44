"""The text form of a training report: one mAP table row per code length.

Columns: for each database kind scored (``learned``, ``encoded``, ``descriptor``) the mAP of the last model
under the headline tie policy and under the other one (index ties / tie-aware), and, when ``train.selection``
is not ``last``, the selected model's mAP beside it, labelled with what selected it (``best_val``, or
``best_query (test-selected)`` for the official protocol). Every other scalar metric that was computed
(``map@100`` from ``eval.topk``, ``precision@10``, ``recall@radius2``, a plugin metric, ...) follows as a
column ``<kind> <metric>`` of the last model; option values and query counts are left to ``--json``.

For a seen/unseen class split a second table follows: one column per open-set protocol and database kind
(``seen@all learned``, ...), for the model the report headlines (the selected one, or the last).
"""

from __future__ import annotations

from typing import Any

from hashkit.evaluation.report import format_table

SELECTION_LABELS = {"best_val": "best_val", "best_query": "best_query (test-selected)"}


def extra_metrics(scores: dict[str, Any]) -> list[str]:
    """The scalar metrics of one result besides ``map``/``map_tie_aware`` (options and counts excluded)."""
    from hashkit.evaluation.report import OPTION_KEYS

    return [k for k, v in scores.items()
            if k not in ("map", "map_tie_aware") and k not in OPTION_KEYS and not k.startswith("num_")
            and not k.endswith("_queries") and isinstance(v, (int, float)) and not isinstance(v, bool)]


def report_table(report: dict[str, Any]) -> str:
    """A title naming recipe, dataset, protocol and selection, then one row per code length
    (rendered by :func:`hashkit.evaluation.report.format_table`)."""

    key = "map_tie_aware" if report.get("ties") == "tie_aware" else "map"
    other, other_label = ("map", "index ties") if key == "map_tie_aware" else ("map_tie_aware", "tie-aware")
    selection = report.get("selection", "last")
    label = SELECTION_LABELS.get(selection, selection)
    rows: dict[Any, dict[str, Any]] = {}
    columns: list[str] = []
    for length, res in report["results"].items():
        row: dict[str, Any] = {}
        for kind, scores in res["last"].items():
            name = f"{kind} mAP" if selection == "last" else f"{kind} mAP (last)"
            row[name] = scores.get(key)
            row[f"{kind} {other_label}"] = scores.get(other)  # every report shows both tie policies
            if selection != "last":
                row[f"{kind} mAP ({label})"] = res.get("selected", {}).get(kind, {}).get(key)
        if selection != "last":
            row["selected round"] = res.get("selected_round")
        for kind, scores in res["last"].items():
            for metric in extra_metrics(scores):
                row[f"{kind} {metric}"] = scores[metric]
        for name in row:
            if name not in columns:
                columns.append(name)
        rows[int(length) if str(length).isdigit() else length] = row
    title = (f"recipe {report['recipe']} on {report['dataset']} ({report['protocol']}); training protocol "
             f"{report['training_protocol']}; mAP@all, ties {'tie-aware' if key == 'map_tie_aware' else 'by database index'}"
             + ("; last database item dropped (official parity)" if report.get("drop_last_item") else ""))
    text = format_table(rows, columns=columns, title=title)
    open_set = _open_set_table(report, key, label)
    return text + ("\n\n" + open_set if open_set else "")


def _open_set_table(report: dict[str, Any], key: str, label: str) -> str:
    rows: dict[Any, dict[str, Any]] = {}
    columns: list[str] = []
    for length, res in report["results"].items():
        protocols = res.get("protocols", {}).get("selected")
        if not protocols:
            continue
        row = {f"{protocol} {kind}": scores.get(key) for protocol, by_kind in protocols.items()
               for kind, scores in by_kind.items()}
        columns += [c for c in row if c not in columns]
        rows[int(length) if str(length).isdigit() else length] = row
    if not rows:
        return ""
    model = "last model" if report.get("selection", "last") == "last" else f"model selected by {label}"
    return format_table(rows, columns=columns, title=f"open-set protocols ({model}; mAP@all; database kind after "
                                                     "the protocol: its seen part, the unseen part is encoded)")
