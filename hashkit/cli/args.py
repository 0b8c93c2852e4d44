"""Argument helpers shared by several commands (``--set`` overrides)."""

from __future__ import annotations

import argparse


def add_set_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set train.amp=bf16 (TOML literal; repeatable)",
    )
