"""``hashkit gallery RUN [--queries N | --query IMAGE ...] --out DIR``: retrieval galleries and an HTML report.

For every code length of the run: a PNG grid (``DIR/gallery_L{bits}.png``; per query the query, its attention
overlays when the model has maps, and the top-k database images with Hamming distance and class, framed green
when relevant and red when not; :mod:`hashkit.gallery.retrieval_gallery`), then one page ``DIR/report.html``
with the training curves, the mAP table, PR and precision@k plots, same- vs different-class distance
histograms, bit balance and the galleries (:mod:`hashkit.gallery.html_report`).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("gallery", help="retrieval galleries (PNG per code length) and an HTML report of a run",
                       description="Draw the top-k retrieval results of a trained run as PNG grids and write an "
                                   "HTML report with its curves, scores and plots.")
    p.add_argument("run", type=Path, metavar="RUN", help="run directory written by hashkit train")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory for the PNGs and report.html")
    p.add_argument("--queries", type=int, default=None, metavar="N",
                   help="dataset query items to show, spread over the query split (default 8; 0 with --query)")
    p.add_argument("--query", type=Path, nargs="+", default=[], metavar="IMAGE",
                   help="image files to use as queries (each encoded alone)")
    p.add_argument("-k", type=int, default=8, help="database images per query (default 8)")
    p.add_argument("--code-length", dest="code_lengths", type=int, action="append", default=None, metavar="L",
                   help="only this code length (repeatable; default: all of the run's)")
    p.add_argument("--database", choices=("auto", "encoded", "learned", "label"), default="auto",
                   help="database codes to search: encoded by the network, or the protocol's learned or "
                        "label-derived codes "
                        "(default: encoded when the run scored it)")
    p.add_argument("--cell", type=int, default=96, help="side of one picture in pixels (default 96)")
    p.add_argument("--opacity", type=float, default=0.5, help="weight of the coloured attention map (0..1)")
    p.add_argument("--no-report", action="store_true", help="only the gallery PNGs (no plots, no report.html)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from hashkit.errors import DataError, HashkitError
    from hashkit.gallery.html_report import write_run_report
    from hashkit.gallery.retrieval_gallery import GalleryOptions
    from hashkit.output_paths import check_output_folder

    queries = args.queries if args.queries is not None else (0 if args.query else 8)
    if queries < 0:
        raise HashkitError(f"--queries must be >= 0, found {queries}")
    for path in args.query:
        if not path.is_file():
            raise DataError(f"{path}: no such query image")
    check_output_folder(args.out)  # before the run is loaded
    try:
        options = GalleryOptions(k=args.k, cell=args.cell, opacity=args.opacity)
    except ValueError as exc:
        raise HashkitError(f"bad gallery option: {exc}") from None
    with torch.no_grad():
        page = write_run_report(args.run, args.out, queries=queries, query_images=args.query,
                                database=args.database, code_lengths=args.code_lengths, options=options,
                                report=not args.no_report)
    if page is not None:
        print(f"wrote {page}")
    return 0
