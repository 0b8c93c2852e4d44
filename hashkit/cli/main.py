"""Entry point of the ``hashkit`` command.

Each module in :mod:`hashkit.cli.commands` defines ``add_parser(subparsers)``, which adds its sub-command
and sets ``func`` (``args -> int``). Exit status: 0 on success, 2 on bad input (a one-line message on stderr,
no traceback), 1 on internal errors (traceback shown).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import traceback
import warnings

from hashkit.errors import HashkitError, RecipeUpgradeWarning


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own usage errors: one line, status 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from hashkit import __version__
    from hashkit.cli import commands

    parser = _Parser(prog="hashkit", description="Learning-to-hash for fine-grained image retrieval.")
    parser.add_argument("--version", action="version", version=f"hashkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"hashkit.cli.commands.{info.name}")
        module.add_parser(sub)
    return parser


def _one_line_warnings(show):
    """``warnings.showwarning`` printing hashkit's own warnings as one line on stderr, others with ``show``."""
    def show_warning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, RecipeUpgradeWarning):
            print(f"hashkit: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)
    return show_warning


def main(argv: list[str] | None = None) -> int:
    # torch_geometric's import emits this on torch >= 2.10; it is noise for a command-line user
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2 if args.command is None else 0
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            return int(args.func(args) or 0)
    except HashkitError as exc:
        print(f"hashkit: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"hashkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hashkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of the output went away (`hashkit ... | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception:  # noqa: BLE001 - internal error: show the traceback
        traceback.print_exc()
        print("hashkit: internal error (the traceback above is a bug; please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
