"""``hashkit train RECIPE [--set ...] [--out DIR] [--resume DIR] [--code-length L] [--device D] [--no-progress]``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from hashkit.cli.args import add_image_options, add_progress_option, add_set_option, with_progress_option


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="train a recipe (every code length) and print its mAP table",
        description="Train a recipe into a run directory, evaluate it and print a mAP table per code length. "
                    "Launch with torchrun for several GPUs or nodes; --resume continues an interrupted run.")
    p.add_argument("recipe", nargs="?", help="recipe file or built-in recipe name (e.g. semicon-demo); "
                                             "not needed with --resume")
    add_set_option(p)
    p.add_argument("--out", type=Path, default=None,
                   help="run directory (default: runs/<recipe name>-<date-time>); must not exist or be empty")
    p.add_argument("--resume", type=Path, default=None, metavar="DIR",
                   help="continue the run in DIR from its last checkpoints (uses the recipe saved there)")
    p.add_argument("--code-length", dest="code_lengths", type=int, action="append", default=None, metavar="L",
                   help="train only this code length (repeatable; default: the recipe's code_lengths)")
    p.add_argument("--device", default=None,
                   help="auto (CUDA when present), cpu, cuda, cuda:1, ... (sets train.device; allowed on --resume)")
    add_progress_option(p)
    add_image_options(p)
    p.set_defaults(func=run)


def _overrides(args: argparse.Namespace) -> list[str]:
    device = [f"train.device={json.dumps(args.device)}"] if args.device is not None else []
    return [*with_progress_option(args), *device]


def run(args: argparse.Namespace) -> int:
    from hashkit.errors import RecipeError
    from hashkit.training import train

    overrides = _overrides(args)
    if args.resume is not None:
        if args.out is not None and args.out != args.resume:
            raise RecipeError("--out and --resume name different directories; --resume continues the run in place")
        if args.recipe:
            raise RecipeError(f"hashkit train {args.recipe} --resume {args.resume}: a resumed run uses the recipe "
                              f"saved in {args.resume}; drop {args.recipe}")
        train(None, args.resume, overrides=overrides, resume=True, code_lengths=args.code_lengths)
        return 0
    if not args.recipe:
        raise RecipeError("no recipe given: hashkit train RECIPE (or --resume DIR)")
    out = args.out
    if out is None:
        from hashkit.recipe import load_recipe

        name = load_recipe(args.recipe, overrides).name
        out = Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    train(args.recipe, out, overrides=overrides, code_lengths=args.code_lengths)
    print(f"run directory: {out}")
    return 0
