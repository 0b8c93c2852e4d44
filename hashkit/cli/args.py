"""Argument helpers shared by several commands (``--set`` overrides, progress bars, image-reading options)."""

from __future__ import annotations

import argparse


SET_HELP = "override a recipe value, e.g. --set train.amp=bf16 (TOML literal; repeatable)"


def add_set_option(parser: argparse.ArgumentParser, help: str = SET_HELP) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help)


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    """``--no-progress`` for the commands whose bars follow the recipe's ``train.progress``."""
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (sets train.progress = false)")


def with_progress_option(args: argparse.Namespace) -> list[str]:
    """``args.overrides`` plus ``train.progress=false`` when ``--no-progress`` was given."""
    return [*args.overrides, *(["train.progress=false"] if args.no_progress else [])]


def add_image_options(parser: argparse.ArgumentParser) -> None:
    """``--max-image-pixels N`` for commands that read images (see :mod:`hashkit.data.readers`)."""
    parser.add_argument(
        "--max-image-pixels", type=int, default=None, metavar="N",
        help="refuse images with more than N pixels (default: PIL's limit, 178956970; 0 = no limit)",
    )


def apply_image_options(args: argparse.Namespace) -> None:
    """Export ``--max-image-pixels`` to the environment, where readers (and DataLoader workers) find it."""
    import os

    from hashkit.data.readers import MAX_PIXELS_ENV

    if getattr(args, "max_image_pixels", None) is not None:
        os.environ[MAX_PIXELS_ENV] = str(args.max_image_pixels)
