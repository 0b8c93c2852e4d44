"""The untrained baseline: a recipe's model scored at initialisation, the starting point of a trained run.

The model is built exactly as ``hashkit train`` builds it (same initialisation seed ``(seed, L)``, same
protocol set-up), then scored like a finished run: query codes from the network in eval mode; the database
encoded by the network and, for protocols with database codes of their own (ADSH's learned ones, FISH's
label-derived ones), those codes; on a seen/unseen split, the seen@seen figures.
``hashkit baseline RECIPE`` prints the same table as ``hashkit train``.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch

from hashkit.recipe.schema import Recipe


def untrained_report(recipe: Recipe, code_lengths: Iterable[int] | None = None,
                     device: torch.device | str = "cpu") -> dict[str, Any]:
    """A report like ``train``'s (``results[bits]["last"]`` = scores of the untrained model)."""
    from hashkit.assemble import build, build_dataset
    from hashkit.training.evaluate import evaluate_data
    from hashkit.training.seeding import derive_seed, generator, seed_globals

    device = torch.device(device)
    data = build_dataset(recipe)
    lengths = tuple(code_lengths or recipe.code_lengths or (None,)) if recipe.hash_head is not None else (None,)
    results: dict[str, Any] = {}
    for length in lengths:
        seed_globals(derive_seed(recipe.seed, length, "init"))
        built = build(recipe, length, data=data)
        train = data.split("train")
        built.protocol.setup(train.targets.float(), generator(recipe.seed, length, "setup"))
        codes = built.protocol.database_codes()
        res = evaluate_data(built.model.to(device).eval(), recipe, data,
                            codes=codes.float().cpu() if codes is not None else None,
                            provided_kind=built.protocol.database, device=device, progress=recipe.train.progress)
        key = str(length) if length else "real"
        results[key] = {"code_length": length, "last": res.scores, "selected": res.scores}
        if res.protocols:  # a seen/unseen split: every open-set protocol, as a trained run reports them
            results[key]["protocols"] = {"last": res.protocols, "selected": res.protocols}
    return {"recipe": recipe.name, "dataset": data.name, "protocol": data.protocol,
            "training_protocol": recipe.protocol.name, "selection": "last", "ties": recipe.eval.ties,
            "drop_last_item": recipe.eval.drop_last_item, "results": results, "model": "untrained"}


def baseline(recipe_or_path: Recipe | str | Mapping[str, Any], overrides=None, **kwargs) -> dict[str, Any]:
    """:func:`untrained_report` of a recipe file, name or data (``overrides`` as for ``load_recipe``)."""
    from hashkit.recipe.load import load_recipe

    recipe = recipe_or_path if isinstance(recipe_or_path, Recipe) else load_recipe(recipe_or_path, overrides)
    return untrained_report(recipe, **kwargs)
