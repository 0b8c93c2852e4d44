"""``hashkit export RUN --onnx model.onnx [--code-length L]``: the encoder of a trained run as ONNX.

The graph maps normalised images ``(B, 3, crop, crop)`` (dynamic ``B``) to ``codes`` (±1) and ``relaxed`` codes
(:mod:`hashkit.export.onnx_export`). Before the file is written, onnxruntime runs it on ``--check`` images of
the run's query split (eval transform) at batch sizes 1 and 16 and its codes are compared with the PyTorch
model's: relaxed codes within 1e-4, binary codes identical, else nothing is written and the exit status is 2.
Like ``encode``, the output is checked before the run is loaded (an existing file needs ``--overwrite``; a
directory, a path under a file or a read-only location is one error line).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a run's encoder (images -> codes) to ONNX, checked with onnxruntime",
                       description="Export the encoder of a trained run as an ONNX graph with a dynamic batch size "
                                   "and check it against the PyTorch model with onnxruntime.")
    p.add_argument("model", type=Path, metavar="RUN", help="run directory, or L<bits>/checkpoint.safetensors in one")
    p.add_argument("--onnx", type=Path, required=True, metavar="FILE",
                   help="ONNX file to write (checked before the export starts; an existing file needs --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --onnx file")
    p.add_argument("--code-length", type=int, default=None, help="code length of the run (default: its first)")
    p.add_argument("--check", type=int, default=64, metavar="N",
                   help="query images of the run's dataset to check the graph on (default 64; 0 = no check)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: torch.onnx's)")
    p.set_defaults(func=run)


def check_images(loaded, count: int):
    """The first ``count`` query images of the run's dataset through the eval transform, ``(n, 3, crop, crop)``."""
    import torch

    from hashkit.assemble import build_dataset
    from hashkit.data.transforms import build_transform

    split = build_dataset(loaded.recipe).split("query")
    transform = build_transform(loaded.recipe.data.eval_transform)
    return torch.stack([transform(split.reader(item)) for item in list(split.items)[:count]])


def run(args: argparse.Namespace) -> int:
    import time

    from hashkit.cli.commands.encode import resolve_model_path
    from hashkit.errors import HashkitError
    from hashkit.export.onnx_export import export_onnx, require_onnx
    from hashkit.model.capabilities import batch_dependent_components
    from hashkit.output_paths import check_output_file
    from hashkit.runs import load_run

    require_onnx()
    if args.check < 0:
        raise HashkitError(f"--check must be >= 0, found {args.check}")
    check_output_file(args.onnx, overwrite=args.overwrite, option="--onnx")  # as encode: before any work
    run_dir, code_length = resolve_model_path(args.model)
    loaded = load_run(run_dir, args.code_length if args.code_length is not None else code_length)
    images = check_images(loaded, args.check) if args.check else None
    started = time.perf_counter()
    result = export_onnx(loaded.model, args.onnx, section=loaded.recipe.data.eval_transform,
                         recipe_name=loaded.recipe.name, check_images=images)
    size = args.onnx.stat().st_size / 2**20
    crop = loaded.recipe.data.eval_transform.crop
    print(f"wrote {args.onnx} ({size:.1f} MiB): images (B, 3, {crop}, {crop}) -> codes, relaxed (B, "
          f"{loaded.code_length}); exported in {time.perf_counter() - started:.0f} s")
    print(result.describe() if result is not None else "not checked (--check 0)")
    dependent = batch_dependent_components(loaded.model)
    if dependent:
        print(f"note: in eval mode {', '.join(dependent)} depends on the other images of the batch, so a code "
              "does too (the graph reproduces this; metadata batch_dependent = true)")
    return 0
