"""Time one training step (forward, the recipe's losses, backward, SGD step) and one encoding pass of SEMICON
and, in the same run, of other ADSH-family recipes, with each one's time as a ratio of the first recipe's.

Each model is built from its recipe through the registry (random init: no weights file is needed), at one
code length, with ``--classes`` classes for classifier heads. The losses get a synthetic protocol state as in
training (B of ``--database`` rows, S rows, omega, the last round so that every scheduled term is on, and
class anchors so that ExchNet's exchange and alignment run) and random labels. Devices: the CPU always; CUDA
when available, with bf16 autocast and channels_last (``--no-cuda`` skips it). The timed calls of the recipes
are interleaved, so a change of machine load during the run affects them alike. Prints images/s and peak
memory (CPU: the process's peak resident set size with every recipe's model loaded; CUDA:
``torch.cuda.max_memory_allocated`` per recipe).

    OMP_NUM_THREADS=2 python benchmarks/bench_semicon_step.py                   # SEMICON, 224 px, batch 16
    OMP_NUM_THREADS=2 python benchmarks/bench_semicon_step.py --recipe semicon.toml --recipe a2net.toml \
        --recipe exchnet.toml --recipe agmh.toml --recipe dahnet.toml           # the ADSH family vs SEMICON
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


def build(code_length: int, recipe: str, classes: int):
    from hashkit.assemble import build_losses, build_model
    from hashkit.components import build_ref
    from hashkit.interfaces import BuildContext
    from hashkit.recipe import load_recipe

    loaded = load_recipe(ROOT / "recipes" / recipe, {"model.backbone.weights": "none"})
    model = build_model(loaded, code_length, classes)
    protocol = build_ref(loaded.protocol, BuildContext(code_length=code_length, num_classes=classes))
    return model, build_losses(loaded, model, protocol, code_length, classes), loaded


def synthetic_state(batch: int, n: int, L: int, descriptor_dim: int, rounds: int, device: torch.device,
                    g: torch.Generator) -> dict:
    B = torch.randn(n, L, generator=g).sign()
    S = torch.where(torch.rand(batch, n, generator=g) < 0.01, 1.0, -0.01)
    return {"B": B.to(device), "S": S.to(device), "omega": torch.randperm(n, generator=g)[:batch].to(device),
            "round": torch.tensor(rounds - 1, device=device),
            "anchors": torch.randn(batch, descriptor_dim, generator=g).abs().to(device)}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def prepare(device: torch.device, args, recipe_file: str) -> dict:
    """One recipe's model, losses, optimiser and synthetic batch: ``train_step`` and ``encode`` closures."""
    from hashkit.interfaces import LossInputs

    torch.manual_seed(0)
    model, losses, recipe = build(args.code_length, recipe_file, args.classes)
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
    state = synthetic_state(args.batch, args.database, args.code_length, model.descriptor_dim,
                            recipe.protocol.config.rounds if hasattr(recipe.protocol.config, "rounds") else 1,
                            device, g)
    labels = torch.nn.functional.one_hot(torch.randint(0, args.classes, (args.batch,), generator=g),
                                         args.classes).float().to(device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if fast else nullcontext()

    def train_step():
        model.train()
        with autocast:
            out = model(x, context=state)
        extras = {k: v.float() if torch.is_tensor(v) else v for k, v in out.extras.items()}
        res = losses(LossInputs(codes=out.codes.float(), logits=out.logits.float(), descriptor=out.descriptor.float(),
                                class_logits=None if out.class_logits is None else out.class_logits.float(),
                                labels=labels, indices=state["omega"], extras=extras, protocol=state))
        opt.zero_grad(set_to_none=True)
        res.value.backward()
        opt.step()
        return float(res.value.detach())

    def encode():
        model.eval()
        with torch.no_grad(), autocast:
            return model(x).codes

    return {"recipe": recipe.name, "parameters": sum(p.numel() for p in model.parameters()),
            "train": train_step, "encode": encode, "loss": None}


def bench(device: torch.device, args, recipe_files: list[str]) -> list[dict]:
    """Time every recipe's train step and encoding pass. The timed calls are interleaved (step i of every
    recipe, then step i + 1, ...) so that a change of machine load affects all recipes alike."""
    fast = device.type == "cuda"
    runs = [prepare(device, args, f) for f in recipe_files]
    for run in runs:
        run.update(train_s=0.0, encode_s=0.0, train_peak=0, encode_peak=0)
        for _ in range(args.warmup):
            run["train"]()
            run["encode"]()
    for _ in range(args.steps):
        for kind in ("train", "encode"):
            for run in runs:
                if fast:
                    torch.cuda.reset_peak_memory_stats(device)
                sync(device)
                t = time.perf_counter()
                result = run[kind]()
                sync(device)
                run[f"{kind}_s"] += (time.perf_counter() - t) / args.steps
                if kind == "train":
                    run["loss"] = result
                if fast:
                    run[f"{kind}_peak"] = max(run[f"{kind}_peak"], torch.cuda.max_memory_allocated(device))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB, all models together
    label = f"{device}" + (" bf16+channels_last" if fast else f" fp32 ({torch.get_num_threads()} threads)")
    return [{"recipe": r["recipe"], "parameters": r["parameters"], "device": label, "loss": r["loss"],
             "train_step_s": r["train_s"], "train_img_s": args.batch / r["train_s"],
             "encode_s": r["encode_s"], "encode_img_s": args.batch / r["encode_s"],
             "train_peak_mib": (r["train_peak"] if fast else rss) / 2**20,
             "encode_peak_mib": (r["encode_peak"] if fast else rss) / 2**20} for r in runs]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=3, help="timed iterations (after --warmup)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--code-length", type=int, default=48)
    p.add_argument("--database", type=int, default=5994, help="rows of B (CUB-200-2011's training split: 5994)")
    p.add_argument("--recipe", action="append", default=None,
                   help="recipe file in recipes/ (repeat; the first is the reference of the ratios; default semicon.toml)")
    p.add_argument("--classes", type=int, default=200, help="classes of classifier heads (DAHNet)")
    p.add_argument("--no-cpu", action="store_true")
    p.add_argument("--no-cuda", action="store_true")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    devices = [] if args.no_cpu else [torch.device("cpu")]
    if torch.cuda.is_available() and not args.no_cuda:
        devices.append(torch.device("cuda"))
    recipes = args.recipe or ["semicon.toml"]
    print(f"{', '.join(recipes)}: {args.code_length} bits, batch {args.batch}, {args.size}x{args.size}, "
          f"{args.steps} timed steps after {args.warmup} warm-up; torch {torch.__version__}")
    for device in devices:
        results = bench(device, args, recipes)
        first = results[0]
        for r in results:
            print(f"{r['recipe']} ({r['parameters']:,} parameters) {r['device']}: train step {r['train_step_s']:.3f} s "
                  f"= {r['train_img_s']:.1f} img/s, x{r['train_step_s'] / first['train_step_s']:.2f} of {first['recipe']} "
                  f"(peak {r['train_peak_mib']:.0f} MiB{', process' if device.type == 'cpu' else ''}); encode {r['encode_s']:.3f} s = {r['encode_img_s']:.1f} img/s, "
                  f"x{r['encode_s'] / first['encode_s']:.2f} (peak {r['encode_peak_mib']:.0f} MiB); loss {r['loss']:.3f}")
        if device.type == "cuda":
            print(f"  GPU: {torch.cuda.get_device_name(device)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
