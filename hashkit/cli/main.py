"""Entry point of the ``hashkit`` command.

Each module in :mod:`hashkit.cli.commands` defines ``add_parser(subparsers)``, which adds its sub-command
and sets ``func`` (``args -> int``). Exit status: 0 on success, 2 on bad input or an output that cannot be
written (a one-line message on stderr, no traceback), 1 on internal errors (traceback shown), 130 on Ctrl-C,
141 when the reader of stdout went away (``hashkit ... | head``: the command ends quietly).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import pkgutil
import sys
import traceback
import warnings

from hashkit.errors import HashkitError, RecipeUpgradeWarning

#: the longest error line printed (echoed input can be huge); the rest is cut with a note
MAX_ERROR_CHARS = 1000
#: OSErrors that describe the machine or the user's paths, not a bug: one line, exit status 2
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG,
                       errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ENOENT, errno.ENAMETOOLONG, errno.EMFILE}
_WORKER_TRACEBACK = "Original Traceback (most recent call last):"


def one_line(exc: BaseException) -> str:
    """The message of a user-facing error as one line.

    An error raised inside a DataLoader worker reaches the main process with the worker's whole traceback
    in its message; only the original message is kept. Overlong messages are cut at
    :data:`MAX_ERROR_CHARS`.
    """
    text = str(exc)
    if _WORKER_TRACEBACK in text:
        last = [line for line in text.splitlines() if line.strip()][-1]
        prefix = f"{type(exc).__module__}.{type(exc).__qualname__}: "
        text = (last[len(prefix):] if last.startswith(prefix) else last.split(": ", 1)[-1]) + \
            " (in a data-loading worker)"
    text = " ".join(part.strip() for part in text.splitlines() if part.strip())
    if len(text) > MAX_ERROR_CHARS:
        text = f"{text[:MAX_ERROR_CHARS]}... ({len(text) - MAX_ERROR_CHARS} more characters)"
    return text


def _quiet_broken_pipe() -> int:
    """stdout's reader is gone: stop writing there (also at interpreter exit) and end quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor
        pass
    return 141


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
    try:
        try:
            status = _main(argv)
        except SystemExit:  # argparse's --help, --version and usage errors
            sys.stdout.flush()
            raise
        sys.stdout.flush()  # a closed pipe shows up here for short outputs
        return status
    except BrokenPipeError:
        return _quiet_broken_pipe()


def _main(argv: list[str] | None) -> int:
    # torch_geometric's import emits this on torch >= 2.10; it is noise for a command-line user
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2 if args.command is None else 0
    try:
        from hashkit.cli.args import apply_image_options

        apply_image_options(args)
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            return int(args.func(args) or 0)
    except BrokenPipeError:  # an OSError, but not an error: main() ends quietly with 141
        raise
    except HashkitError as exc:
        print(f"hashkit: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in _ENVIRONMENT_ERRNOS and not isinstance(exc, FileNotFoundError):
            return _internal_error()
        print(f"hashkit: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hashkit: interrupted", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - internal error: show the traceback
        return _internal_error()


def _internal_error() -> int:
    traceback.print_exc()
    print("hashkit: internal error (the traceback above is a bug; please report it)", file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
