"""mAP of a recipe's model at initialisation: the baseline a trained run is compared with.

The model is built exactly as ``hashkit train`` builds it (same init seed, same protocol set-up), then scored
like a finished run: query codes from the network in eval mode; the database encoded by the network and,
for protocols with database codes of their own (ADSH's learned ones, FISH's label-derived ones), those codes;
on a seen/unseen split, the seen@seen figures.

    python tools/untrained_baseline.py semicon-demo [--code-length 12] [--set key=value ...]
"""

from __future__ import annotations

import argparse

import torch

from hashkit.assemble import build
from hashkit.recipe import load_recipe
from hashkit.recipe.schema import Recipe
from hashkit.training.evaluate import evaluate_data
from hashkit.training.seeding import derive_seed, generator, seed_globals


def untrained_scores(recipe: Recipe, length: int | None) -> dict:
    """``{database kind: {"map": ..., "map_tie_aware": ...}}`` of the recipe's untrained model at ``length``."""
    seed_globals(derive_seed(recipe.seed, length, "init"))
    built = build(recipe, length)
    train = built.data.split("train")
    built.protocol.setup(train.targets.float(), generator(recipe.seed, length, "setup"))
    res = evaluate_data(built.model.eval(), recipe, built.data, codes=built.protocol.database_codes(),
                        provided_kind=built.protocol.database, device=torch.device("cpu"))
    return res.scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--code-length", type=int, action="append", default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    recipe = load_recipe(args.recipe, args.overrides)
    for length in args.code_length or recipe.code_lengths or [None]:
        scores = untrained_scores(recipe, length)
        figures = ", ".join(f"{kind} mAP {s['map']:.4f} (tie-aware {s['map_tie_aware']:.4f})"
                            for kind, s in scores.items())
        print(f"{recipe.name} L={length} untrained: {figures}")


if __name__ == "__main__":
    main()
