"""``hashkit recipe validate|show FILE [--set ...]``: check a recipe, or print it resolved with a model summary."""

from __future__ import annotations

import argparse
import sys

from hashkit.cli.args import add_set_option


def add_parser(sub) -> None:
    p = sub.add_parser("recipe", help="validate or show a recipe",
                       description="Validate a recipe against the registered components, or show it fully "
                                   "resolved (extends and --set applied) with a model summary.")
    rsub = p.add_subparsers(dest="recipe_command", metavar="ACTION", parser_class=type(p))
    for name, helptext in (("validate", "check a recipe and build its model (meta device), losses, protocol and "
                                        "metrics for every code length; exit 2 with a one-line error"),
                           ("show", "print the resolved recipe and a model summary with parameter counts")):
        q = rsub.add_parser(name, help=helptext, description=helptext)
        q.add_argument("file", help="recipe file or built-in recipe name (e.g. semicon-demo)")
        add_set_option(q)
        if name == "show":
            q.add_argument("--no-model", action="store_true", help="skip building the model")
            q.add_argument("--code-length", type=int, default=None, help="code length to build (default: first)")
        q.set_defaults(func=run_validate if name == "validate" else run_show)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_validate(args: argparse.Namespace) -> int:
    from hashkit.preflight import preflight
    from hashkit.recipe import load_recipe

    recipe = load_recipe(args.file, args.overrides)
    found = preflight(recipe)
    print(f"{recipe.source}: ok ({recipe.name}; code lengths {list(recipe.code_lengths) or '-'}; model, losses, "
          f"protocol and metrics built)")
    for note in found.notes:
        print(f"note: {note}")
    for message in found.warnings:
        print(f"hashkit: warning: {message}", file=sys.stderr)
    return 0


def run_show(args: argparse.Namespace) -> int:
    from hashkit.recipe import load_recipe
    from hashkit.recipe.toml_writer import dumps_toml

    recipe = load_recipe(args.file, args.overrides)
    text = f"# resolved recipe: {recipe.source}\n{dumps_toml(recipe.raw)}"
    if not args.no_model:
        from hashkit.assemble import build_model
        from hashkit.model.summary import model_summary

        model = build_model(recipe, args.code_length, num_classes=_num_classes_hint(recipe))
        text += "\n" + model_summary(model)
    sys.stdout.write(text.rstrip("\n") + "\n")  # one final newline, whatever the parts end with
    return 0


def _num_classes_hint(recipe) -> int | None:
    """Classes for classifier heads, from the dataset if it can be loaded, else None."""
    from hashkit.assemble import build_dataset
    from hashkit.errors import HashkitError

    try:
        return build_dataset(recipe).num_classes
    except HashkitError:
        return None
