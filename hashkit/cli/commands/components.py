"""``hashkit components [KIND] [--json]``: registered components with their parameters and defaults."""

from __future__ import annotations

import argparse
import json

from hashkit.interfaces.kinds import KINDS


def add_parser(sub) -> None:
    p = sub.add_parser("components", help="list registered components with their parameters",
                       description="List registered components by kind, with each component's parameters, "
                                   "types and defaults.")
    p.add_argument("kind", nargs="?", help=f"only this kind ({', '.join(KINDS)})")
    p.add_argument("--json", action="store_true", help="print JSON: {kind: [{name, plugin, description, parameters}]}")
    p.set_defaults(func=run)


def collect(kind: str | None = None) -> dict[str, list[dict]]:
    from hashkit.recipe.describe import describe_fields
    from hashkit.registry import get_registry

    reg = get_registry()
    kinds = KINDS if kind is None else (kind,)
    return {
        k: [
            {
                "name": e.name,
                "plugin": e.plugin,
                "description": e.description,
                "parameters": describe_fields(e.config),
            }
            for e in reg.entries(k)
        ]
        for k in kinds
    }


def run(args: argparse.Namespace) -> int:
    from hashkit.errors import UnknownComponentError
    from hashkit.registry import unknown_name_message

    if args.kind is not None and args.kind not in KINDS:
        raise UnknownComponentError(unknown_name_message("component kind", args.kind, list(KINDS)))
    data = collect(args.kind)
    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return 0
    for kind, comps in data.items():
        print(f"{kind}:")
        if not comps:
            print("  (none)")
        for c in comps:
            print(f"  {c['name']:<24} {c['description']}  [{c['plugin']}]")
            for prm in c["parameters"]:
                default = "required" if prm["required"] else f"= {prm['default']!r}"
                print(f"      {prm['name']}: {prm['type']} {default}")
    return 0
