"""CPU encode throughput of a run's encoder: onnxruntime (``hashkit export --onnx``) against PyTorch.

Exports the run's encoder (or loads ``--onnx FILE`` written by ``hashkit export``), checks on the demo query
images that both give the same codes (relaxed within 1e-4, binary identical), then times encoding the same
images (already transformed) in batches with the same thread count for both, after a warm-up pass, and prints
images/s and the ratio per batch size.

    hashkit train semicon-demo --out runs/semicon-demo
    OMP_NUM_THREADS=1 python benchmarks/bench_onnx.py runs/semicon-demo --threads 1
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def throughput(fn, batches, repeats: int) -> float:
    """Images per second of ``fn`` over ``batches`` (best of ``repeats`` passes, after one warm-up pass)."""
    for b in batches:
        fn(b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for b in batches:
            fn(b)
        best = min(best, time.perf_counter() - start)
    return sum(len(b) for b in batches) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run directory (e.g. of semicon-demo)")
    parser.add_argument("--code-length", type=int, default=None)
    parser.add_argument("--onnx", type=Path, default=None, help="an exported file (default: export now)")
    parser.add_argument("--images", type=int, default=256, help="demo query images to encode")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    args = parser.parse_args()

    import onnxruntime as ort
    import torch

    from hashkit.cli.commands.export import check_images
    from hashkit.export.onnx_export import EncoderGraph, check_onnx, export_onnx
    from hashkit.runs import load_run

    torch.set_num_threads(args.threads)
    loaded = load_run(args.run, args.code_length)
    images = check_images(loaded, args.images)
    path = args.onnx
    if path is None:
        path = Path(tempfile.mkdtemp()) / "encoder.onnx"
        started = time.perf_counter()
        export_onnx(loaded.model, path, section=loaded.recipe.data.eval_transform, recipe_name=loaded.recipe.name,
                    check_images=None)
        print(f"exported {path} in {time.perf_counter() - started:.1f} s")
    data = path.read_bytes()
    check = check_onnx(data, loaded.model, images, batch_sizes=args.batch_sizes)
    print(f"{loaded.recipe.name}, {loaded.code_length} bits, {len(images)} images of "
          f"{tuple(images.shape[1:])}, {args.threads} thread(s), cpu count {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.2f}")
    print(check.describe())
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    graph = EncoderGraph(loaded.model.eval())

    def run_torch(batch):
        with torch.no_grad():
            graph(batch)

    def run_onnx(batch):
        session.run(["codes", "relaxed"], {"images": batch})

    print(f"{'batch':>5}  {'PyTorch img/s':>14}  {'onnxruntime img/s':>18}  {'ratio ort/torch':>15}")
    for size in args.batch_sizes:
        batches = [images[i:i + size] for i in range(0, len(images), size)]
        t_torch = throughput(run_torch, batches, args.repeats)
        t_onnx = throughput(run_onnx, [b.numpy() for b in batches], args.repeats)
        print(f"{size:>5}  {t_torch:>14.1f}  {t_onnx:>18.1f}  {t_onnx / t_torch:>14.2f}x")


if __name__ == "__main__":
    main()
