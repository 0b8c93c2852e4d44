"""``hashkit bench FILE --out DIR [--shard i/n]`` and ``hashkit bench report DIR [--out DEST]``.

The first trains every cell of a bench file (methods x datasets x code lengths x seeds) that is not done in
DIR, resumably, one shard at a time if asked (:mod:`hashkit.bench.runner`); the second writes the tables
(Markdown, CSV, LaTeX, JSON) and plots of DIR (:mod:`hashkit.bench.report`). docs/benchmarks.md has the
bench file reference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hashkit.cli.args import add_set_option


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench", help="run a benchmark (methods x datasets x code lengths x seeds), or report one",
        description="hashkit bench FILE --out DIR [--shard i/n]: train every cell of the bench file not done in "
                    "DIR (resumable; shards can share DIR).  hashkit bench report DIR [--out DEST]: tables "
                    "(Markdown, CSV, LaTeX, JSON) and PNG plots of DIR.",
        usage="hashkit bench FILE --out DIR [--shard i/n] [--set KEY=VALUE ...] [--list]\n"
              "       hashkit bench report DIR [--out DEST] [--model selected|last] [--no-plots]")
    p.add_argument("target", metavar="FILE | report", help="a bench file (TOML), or `report`")
    p.add_argument("directory", nargs="?", type=Path, metavar="DIR", help="with `report`: the bench output folder")
    p.add_argument("--out", type=Path, default=None,
                   help="bench: the output folder (required); report: where to write (default DIR/report)")
    p.add_argument("--shard", default="1/1", metavar="i/n", help="run only shard i of n (1-based; default 1/1)")
    add_set_option(p)
    p.add_argument("--list", action="store_true", help="list the cells of this shard and their state, run nothing")
    p.add_argument("--model", choices=("selected", "last"), default=None,
                   help="report: the model whose numbers are tabulated (default: the bench file's `model`)")
    p.add_argument("--no-plots", action="store_true", help="report: tables only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hashkit.errors import RecipeError

    if args.target == "report" and args.directory is not None:
        return _report(args)
    if args.directory is not None:
        raise RecipeError(f"unexpected argument {str(args.directory)!r}: hashkit bench FILE --out DIR")
    if args.out is None:
        raise RecipeError("hashkit bench FILE needs --out DIR (the output folder; rerun the same command to resume)")
    from hashkit.bench import cell_dir
    from hashkit.bench.runner import run_bench, shard_cells
    from hashkit.bench.spec import load_bench, parse_shard

    bench = load_bench(args.target)
    shard = parse_shard(args.shard)
    if args.list:
        for cell in shard_cells(bench, shard):
            print(f"{cell_dir.state(args.out, cell):12s} {cell.key}")
        return 0
    progress = run_bench(bench, args.out, shard=shard, extra=tuple(args.overrides))
    failed = f", {len(progress.failed)} FAILED (rerun to retry)" if progress.failed else ""
    print(f"bench {bench.name}: ran {len(progress.ran)} cells, {len(progress.skipped_done)} were done, "
          f"{len(progress.skipped_locked)} running elsewhere{failed}; report: hashkit bench report {args.out}")
    return 2 if progress.failed else 0


def _report(args: argparse.Namespace) -> int:
    from hashkit.bench.report import write_report

    if args.overrides or args.shard != "1/1" or args.list:
        print("hashkit: --set, --shard and --list apply to running a bench, not to `report`", file=sys.stderr)
        return 2
    report = write_report(args.directory, args.out, model=args.model, plots_enabled=not args.no_plots)
    print(report.markdown)
    print(f"wrote {len(report.files)} files to {report.directory} ({report.finished} of {report.expected} cells "
          "finished)")
    return 0
