"""``hashkit baseline RECIPE [--code-length L] [--set ...] [--json] [--no-progress]``: the untrained model's mAP table.

Builds the model exactly as ``hashkit train`` would (same seeds) and scores it like a finished run, so a
trained run's table can be read against its starting point (:mod:`hashkit.training.baseline`).
"""

from __future__ import annotations

import argparse
import json

from hashkit.cli.args import add_image_options, add_progress_option, add_set_option, with_progress_option


def add_parser(sub) -> None:
    p = sub.add_parser("baseline", help="mAP of a recipe's model before training (the untrained baseline)",
                       description="Build a recipe's model as `hashkit train` would (same seeds) and score it "
                                   "untrained, printing the same table as a finished run.")
    p.add_argument("recipe", help="recipe file or built-in recipe name (e.g. semicon-demo)")
    add_set_option(p)
    p.add_argument("--code-length", dest="code_lengths", type=int, action="append", default=None, metavar="L",
                   help="score only this code length (repeatable; default: the recipe's code_lengths)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    add_progress_option(p)
    add_image_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hashkit.training.baseline import baseline
    from hashkit.training.report_text import report_table

    report = baseline(args.recipe, with_progress_option(args), code_lengths=args.code_lengths, device=args.device)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(report_table(report))
        print("model: untrained (initial weights and, for learned databases, the protocol's initial codes)")
    return 0
