"""Time one training step (forward incl. training views, the recipe's losses, backward, optimiser step) of
several recipes in the same run, and print each one's time next to the first recipe's (SEMICON by default).

Each model is built from its recipe through the registry with random init (no weights file needed), at one
code length and ``--classes`` classes; the protocol is set up on synthetic single-label training labels of
``--train`` items (CUB-200-2011: 5,994 items, 200 classes) and the losses get the protocol state of a batch
drawn from its first round, as in training (ADSH's B and S, the proxy-code targets, ...). Two-view methods
(FISH's hidden image, CHN's zoom) run both forwards. The optimiser is the recipe's.

    OMP_NUM_THREADS=2 python benchmarks/bench_train_step.py                       # 224 px, batch 16, CPU
    OMP_NUM_THREADS=1 python benchmarks/bench_train_step.py --size 112 --steps 1 --recipes semicon fish

Prints seconds per step, images per second and the ratio to the first recipe; timings on a shared machine
are noisy (compare ratios from the same run).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]


def setup(recipe_name: str, args):
    from hashkit.assemble import build_losses, build_model
    from hashkit.components import build_ref
    from hashkit.interfaces import BuildContext
    from hashkit.recipe import load_recipe
    from hashkit.training.optim import build_optimizer

    overrides = {"model.backbone.weights": "none"}
    recipe = load_recipe(ROOT / "recipes" / f"{recipe_name}.toml", overrides)
    if args.size != 224 and hasattr(recipe.aggregation.config, "hide_size"):  # FISH's 224 x 224 hiding mask
        recipe = load_recipe(ROOT / "recipes" / f"{recipe_name}.toml", {**overrides, "model.aggregation.hide_size": "input"})
    L, C = args.code_length, args.classes
    torch.manual_seed(0)
    model = build_model(recipe, L, C)
    protocol = build_ref(recipe.protocol, BuildContext(code_length=L, num_classes=C, num_train=args.train))
    losses = build_losses(recipe, model, protocol, L, C)
    g = torch.Generator().manual_seed(0)
    labels = F.one_hot(torch.arange(args.train) % C, C).float()
    protocol.setup(labels, g)
    order = protocol.begin_round(0, g)
    indices = order[: args.batch]
    optimizer = build_optimizer([*model.named_parameters(), *(("losses." + n, p) for n, p in losses.named_parameters())],
                                recipe.optimizer)
    return model, losses, protocol, optimizer, indices, labels[indices]


def bench(recipe_name: str, args) -> dict:
    from hashkit.interfaces import LossInputs

    model, losses, protocol, optimizer, indices, labels = setup(recipe_name, args)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(1))
    model.train()
    losses.train()

    def step():
        out = model(x)
        inputs = LossInputs(codes=out.codes, logits=out.logits, descriptor=out.descriptor,
                            class_logits=out.class_logits, labels=labels, indices=indices, extras=out.extras,
                            protocol=protocol.batch_state(indices))
        res = losses(inputs)
        optimizer.zero_grad(set_to_none=True)
        res.value.backward()
        optimizer.step()
        protocol.observe(indices, out.codes.detach().float())
        return float(res.value.detach())

    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    seconds = (time.perf_counter() - start) / args.steps
    params = sum(p.numel() for p in model.parameters()) + sum(p.numel() for p in losses.parameters())
    return {"step_s": seconds, "img_s": args.batch / seconds, "loss": loss, "parameters": params}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipes", nargs="+", default=["semicon", "fish", "chn", "dpah", "dcdh"])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=3, help="timed steps (after --warmup)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--code-length", type=int, default=48)
    p.add_argument("--classes", type=int, default=200)
    p.add_argument("--train", type=int, default=5994, help="training items (CUB-200-2011: 5994)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    print(f"train step on the CPU ({torch.get_num_threads()} threads), {args.code_length} bits, batch {args.batch}, "
          f"{args.size}x{args.size}, {args.classes} classes, {args.steps} timed steps after {args.warmup} warm-up; "
          f"torch {torch.__version__}")
    first = None
    for name in args.recipes:
        r = bench(name, args)
        first = first or r["step_s"]
        print(f"{name:<10} {r['step_s']:8.3f} s/step  {r['img_s']:6.2f} img/s  x{r['step_s'] / first:5.2f} vs "
              f"{args.recipes[0]}  ({r['parameters']:,} parameters, loss {r['loss']:.3f})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
