"""Time one SEMICON training step (forward, ADSH loss, backward, SGD step) and one encoding pass.

The model is built from ``recipes/semicon.toml`` through the registry (ResNet-50, random init: no weights file
is needed), at one code length. The ADSH loss uses a synthetic protocol state (B of ``--database`` rows, S
rows, omega), as in training. Devices: the CPU always; CUDA when available, with bf16 autocast and
channels_last (``--no-cuda`` skips it). Prints images/s and peak memory (CPU: the process's peak resident set
size, which includes everything loaded before; CUDA: ``torch.cuda.max_memory_allocated``).

    OMP_NUM_THREADS=2 python benchmarks/bench_semicon_step.py                   # 224 px, batch 16
    OMP_NUM_THREADS=1 python benchmarks/bench_semicon_step.py --batch 4 --size 112 --steps 1
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def build(code_length: int, recipe: str):
    from hashkit.assemble import build as build_recipe

    built = build_recipe(ROOT / "recipes" / recipe, code_length,
                         overrides={"model.backbone.weights": "none"}, load_data=False)
    return built.model, built.losses, built.recipe


def synthetic_state(batch: int, n: int, L: int, device: torch.device, g: torch.Generator) -> dict:
    B = torch.randn(n, L, generator=g).sign()
    S = torch.where(torch.rand(batch, n, generator=g) < 0.01, 1.0, -0.01)
    return {"B": B.to(device), "S": S.to(device), "omega": torch.randperm(n, generator=g)[:batch].to(device)}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(device: torch.device, args) -> dict:
    from hashkit.interfaces import LossInputs

    torch.manual_seed(0)
    model, losses, recipe = build(args.code_length, args.recipe)
    fast = device.type == "cuda"
    model = model.to(device)
    if fast:
        model = model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    opt = torch.optim.SGD(model.parameters(), lr=recipe.optimizer.lr, momentum=recipe.optimizer.momentum,
                          weight_decay=recipe.optimizer.weight_decay, nesterov=recipe.optimizer.nesterov)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=g).to(device)
    if fast:
        x = x.contiguous(memory_format=torch.channels_last)
    state = synthetic_state(args.batch, args.database, args.code_length, device, g)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if fast else nullcontext()

    def train_step():
        with autocast:
            out = model(x)
        res = losses(LossInputs(codes=out.codes.float(), indices=state["omega"], protocol=state))
        opt.zero_grad(set_to_none=True)
        res.value.backward()
        opt.step()
        return res.value

    def encode():
        with torch.no_grad(), autocast:
            return model(x).codes

    def timed(fn):
        """Mean seconds per call of ``fn`` after the warm-up, and the CUDA peak memory (None on the CPU)."""
        if fast:
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(args.warmup):
            result = fn()
        sync(device)
        t = time.perf_counter()
        for _ in range(args.steps):
            result = fn()
        sync(device)
        seconds = (time.perf_counter() - t) / args.steps
        return seconds, (torch.cuda.max_memory_allocated(device) if fast else None), result

    model.train()
    train_s, train_peak, loss = timed(train_step)
    model.eval()
    enc_s, enc_peak, _ = timed(encode)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    return {
        "device": f"{device}" + (" bf16+channels_last" if fast else f" fp32 ({torch.get_num_threads()} threads)"),
        "train_step_s": train_s, "train_img_s": args.batch / train_s, "loss": float(loss.detach()),
        "encode_s": enc_s, "encode_img_s": args.batch / enc_s,
        "train_peak_mib": (train_peak if fast else rss) / 2**20,
        "encode_peak_mib": (enc_peak if fast else rss) / 2**20,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=3, help="timed iterations (after --warmup)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--code-length", type=int, default=48)
    p.add_argument("--database", type=int, default=5994, help="rows of B (CUB-200-2011's training split: 5994)")
    p.add_argument("--recipe", default="semicon.toml")
    p.add_argument("--no-cpu", action="store_true")
    p.add_argument("--no-cuda", action="store_true")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    devices = [] if args.no_cpu else [torch.device("cpu")]
    if torch.cuda.is_available() and not args.no_cuda:
        devices.append(torch.device("cuda"))
    print(f"SEMICON {args.code_length} bits, batch {args.batch}, {args.size}x{args.size}, "
          f"{args.steps} timed steps after {args.warmup} warm-up; torch {torch.__version__}")
    for device in devices:
        r = bench(device, args)
        print(f"{r['device']}: train step {r['train_step_s']:.3f} s = {r['train_img_s']:.1f} img/s "
              f"(peak {r['train_peak_mib']:.0f} MiB); encode {r['encode_s']:.3f} s = {r['encode_img_s']:.1f} img/s "
              f"(peak {r['encode_peak_mib']:.0f} MiB); loss {r['loss']:.3f}")
        if device.type == "cuda":
            print(f"  GPU: {torch.cuda.get_device_name(device)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
