"""``hashkit eval RUN [--set ...] [--json] [--plots DIR]``: evaluate a run directory again.

Loads every code length of the run (:func:`hashkit.runs.load_run`: the selected model when the run selected
one, else the last), encodes the query (and, for ``encoded``, the database) split and scores it with the run's
``[eval]`` section; ``--set eval.drop_last_item=true`` or ``--set eval.topk=[0,100]`` change what is measured
without retraining (``--set`` applies to the saved recipe). Prints the table (every computed metric), or JSON
with ``--json``. ``--plots DIR`` adds what the plots need to the measured metrics (``pr_curve`` and
``precision@K`` for K in :data:`PLOT_K`) and writes a precision-recall and a precision@k plot per database
kind of Hamming codes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hashkit.cli.args import add_image_options, add_progress_option, add_set_option, with_progress_option

#: the k of the precision@k plot
PLOT_K = (1, 5, 10, 20, 50, 100)


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained run (mAP table per code length)",
                       description="Re-evaluate a run directory written by `hashkit train`.")
    p.add_argument("run", type=Path, help="run directory")
    add_set_option(p)
    p.add_argument("--code-length", dest="code_lengths", type=int, action="append", default=None, metavar="L",
                   help="evaluate only this code length (repeatable; default: all of the run's)")
    p.add_argument("--last", action="store_true", help="evaluate the last model even if the run selected another")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.add_argument("--plots", type=Path, default=None, metavar="DIR", help="write PNG plots into DIR")
    p.add_argument("--device", default=None, help="override train.device (auto, cpu, cuda, ...)")
    add_progress_option(p)
    add_image_options(p)
    p.set_defaults(func=run)


def evaluate_run(run_dir: Path, overrides=None, code_lengths=None, which: str = "selected",
                 device: str | None = None) -> dict:
    """The report of ``hashkit eval``: per code length, the scores of the loaded model."""
    import torch

    from hashkit.assemble import build_dataset
    from hashkit.runs import load_run, run_code_lengths
    from hashkit.training import ddp
    from hashkit.training.device import pick_device
    from hashkit.training.evaluate import evaluate_data
    from hashkit.training.validation import carve_validation

    lengths = code_lengths or run_code_lengths(run_dir) or [None]
    results: dict[str, dict] = {}
    first = None
    for length in lengths:
        loaded = load_run(run_dir, length, which=which, overrides=overrides)
        recipe = loaded.recipe
        first = first or loaded
        dev = pick_device(device or recipe.train.device, ddp.DistInfo())
        data = build_dataset(recipe)
        train_data = carve_validation(data, recipe.train.val_fraction, recipe.seed)[0] \
            if recipe.train.selection == "best_val" else data
        res = evaluate_data(loaded.model.to(dev), recipe, data, codes=loaded.database_codes,
                            provided_kind=loaded.database_source, train_data=train_data, device=dev,
                            progress=recipe.train.progress)
        key = str(loaded.code_length) if loaded.code_length else "real"
        results[key] = {"code_length": loaded.code_length, "model": loaded.which, "last": res.scores,
                        "selected": res.scores}
        if res.protocols:
            results[key]["protocols"] = {"last": res.protocols, "selected": res.protocols}
        del res
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
    recipe = first.recipe
    return {"recipe": recipe.name, "dataset": data.name, "protocol": data.protocol,
            "training_protocol": recipe.protocol.name, "selection": "last", "ties": recipe.eval.ties,
            "drop_last_item": recipe.eval.drop_last_item, "run_dir": str(run_dir), "results": results}


def plot_overrides(run_dir: Path, overrides: list[str]) -> list[str]:
    """``overrides`` plus an ``eval.metrics`` that also computes what the plots draw."""
    import warnings

    from hashkit.errors import RecipeUpgradeWarning
    from hashkit.recipe import load_recipe
    from hashkit.recipe.toml_writer import toml_value
    from hashkit.training.run_dir import RECIPE_FILE

    with warnings.catch_warnings():  # an upgraded old recipe is reported once, when the run is loaded
        warnings.simplefilter("ignore", RecipeUpgradeWarning)
        recipe = load_recipe(run_dir / RECIPE_FILE, overrides, saved_run=True)
    names = {ref.name for ref in recipe.eval.metrics}
    ks = {k for ref in recipe.eval.metrics if ref.name == "precision@k" for k in ref.config.k}
    metrics = list(recipe.raw.get("eval", {}).get("metrics", ["map"]))
    metrics += ["pr_curve"] if "pr_curve" not in names else []
    metrics += [f"precision@{k}" for k in PLOT_K if k not in ks]
    return [*overrides, f"eval.metrics={toml_value(metrics)}"]


def run(args: argparse.Namespace) -> int:
    from hashkit.training.report_text import report_table

    if args.plots is not None:
        from hashkit.output_paths import check_output_folder

        check_output_folder(args.plots, option="--plots")  # before the evaluation
    overrides = with_progress_option(args)
    overrides = plot_overrides(args.run, overrides) if args.plots is not None else overrides
    report = evaluate_run(args.run, overrides, args.code_lengths, "last" if args.last else "selected",
                          args.device)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        models = {r["model"] for r in report["results"].values()}
        print(report_table(report))
        print(f"model: {', '.join(sorted(models))} (see train.selection in {args.run / 'recipe.toml'})")
    if args.plots is not None:
        from hashkit.evaluation.plots import plot_pr_curves, plot_precision_at_k

        args.plots.mkdir(parents=True, exist_ok=True)
        for kind in ("learned", "label", "encoded", "descriptor"):
            per_bits = {int(k): v["last"][kind] for k, v in report["results"].items()
                        if kind in v["last"] and k.isdigit()}
            if not per_bits:
                continue
            written = [plot_pr_curves(per_bits, args.plots / f"pr_{kind}.png", title=f"{report['recipe']} ({kind})"),
                       plot_precision_at_k(per_bits, args.plots / f"precision_at_k_{kind}.png",
                                           title=f"{report['recipe']} ({kind})")]
            for path in written:
                if path is not None:
                    print(f"wrote {path}")
        if not any(args.plots.iterdir()):
            print("no plots: precision-recall and precision@k plots are drawn for Hamming codes only")
    return 0
