"""``hashkit plugins``: loaded plugins with versions, components and load failures."""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    p = sub.add_parser("plugins", help="list plugins, their versions, components and load failures",
                       description="List the loaded plugins (built-in and third-party), their versions, the "
                                   "components each registered, and plugins that failed to load.")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hashkit.registry import get_registry

    reg = get_registry()
    rows = [
        {
            "name": rec.name,
            "module": rec.module,
            "distribution": rec.distribution,
            "version": rec.version,
            "builtin": rec.builtin,
            "components": [f"{k}:{n}" for k, n in rec.components],
            "error": rec.error,
        }
        for rec in reg.plugins
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [(row["name"], "built-in" if row["builtin"] else (row["distribution"] or "python"),
              row["version"] or "-",
              f"FAILED: {row['error']}" if row["error"] else f"{len(row['components'])} components")
             for row in rows]
    widths = [max(len(cells[i]) for cells in table) for i in range(3)]  # columns as wide as their longest cell
    for cells, row in zip(table, rows):
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths)) + "  " + cells[3])
        if row["components"]:
            print("    " + ", ".join(row["components"]))
    return 0
