"""The demo mAP table of the generic deep-hashing baselines: every ``recipes/generic-demo/<method>.toml`` trained on
the built-in demo data at 16 and 32 bits, next to the same model untrained (CPU, one process).

    python tools/generic_demo_table.py [--lengths 16 32] [--methods dpsh csq ...] [--epochs N] [--set key=value ...]
                                       [--json OUT]

Each cell is mAP@all over the encoded database (query = the demo's test images, database = its training
images), ties broken by database index as ``hashkit train`` reports it; ADSH also shows its learned database.
The untrained figure is the recipe's model at initialisation (same seed as training, as ``hashkit baseline``
computes it). Timings depend on the machine's load.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
DEMOS = ROOT / "recipes" / "generic-demo"


def demo_methods() -> list[str]:
    return sorted(p.stem for p in DEMOS.glob("*.toml") if p.stem != "base")


def epoch_overrides(method: str, epochs: int) -> list[str]:
    """``--set`` lines giving a demo about ``epochs`` epochs in all, whatever its protocol's loop."""
    from hashkit.recipe import load_recipe

    protocol = load_recipe(DEMOS / f"{method}.toml").protocol
    if protocol.name == "pointwise":
        return [f"protocol.epochs={epochs}"]
    per_round = int(getattr(protocol.config, "epochs", 1))
    return [f"protocol.rounds={max(1, round(epochs / per_round))}"]


def run_method(method: str, lengths: list[int], overrides: list[str], epochs: int | None = None) -> dict:
    """``{length: {"untrained": scores, "trained": scores, "seconds": s}}`` with ``scores = {kind: {map, ...}}``;
    ``epochs`` shortens (or lengthens) the demo's training to about that many epochs."""
    from hashkit.recipe import load_recipe
    from hashkit.training import train
    from hashkit.training.baseline import untrained_report

    sets = [*(epoch_overrides(method, epochs) if epochs else []), *overrides,
            f"code_lengths={json.dumps(lengths)}"]
    recipe = load_recipe(DEMOS / f"{method}.toml", sets)
    out: dict = {}
    for length in lengths:
        out[length] = {"untrained": untrained_report(recipe, [length])["results"][str(length)]["last"]}
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        report = train(recipe, Path(tmp) / "run")
    for length in lengths:
        out[length]["trained"] = report["results"][str(length)]["last"]
        out[length]["seconds"] = round((time.time() - started) / len(lengths), 1)
    return out


def table(results: dict[str, dict], lengths: list[int]) -> str:
    head = ["method"] + [f"{L} bits {w}" for L in lengths for w in ("untrained", "trained", "gain")]
    rows = [head]
    for method, per_length in results.items():
        row = [method]
        for L in lengths:
            before = per_length[L]["untrained"]["encoded"]["map"]
            after = per_length[L]["trained"]["encoded"]["map"]
            row += [f"{before:.4f}", f"{after:.4f}", f"{after - before:+.4f}"]
        rows.append(row)
        learned = [per_length[L]["trained"].get("learned") for L in lengths]
        if all(learned):
            rows.append([f"  {method} (learned db)"] + [c for L, s in zip(lengths, learned)
                                                        for c in ("", f"{s['map']:.4f}", "")])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
                     for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--methods", nargs="+", default=None, help=f"default: all of {DEMOS}")
    parser.add_argument("--epochs", type=int, default=None, help="about this many training epochs (default: the recipes')")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--json", type=Path, default=None, help="also write the raw figures here")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    results = {}
    started = time.time()
    for method in args.methods or demo_methods():
        results[method] = run_method(method, args.lengths, args.overrides, args.epochs)
        print(f"{method}: " + ", ".join(
            f"L={L} {r['untrained']['encoded']['map']:.4f} -> {r['trained']['encoded']['map']:.4f}"
            for L, r in results[method].items()), file=sys.stderr, flush=True)
    print(f"generic demo: mAP@all, encoded database, demo data (600 train = database, 200 queries), "
          f"{time.time() - started:.0f} s in all")
    print(table(results, args.lengths))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
