"""``load_recipe``: file or data + overrides -> a validated :class:`~hashkit.recipe.schema.Recipe`."""

from __future__ import annotations

import copy
import difflib
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping

from hashkit.errors import RecipeError, RecipeUpgradeWarning
from hashkit.interfaces.kinds import KIND_TABLE
from hashkit.recipe.coerce import build_config, coerce_value, component_ref
from hashkit.recipe.messages import Invalid, found
from hashkit.recipe.provenance import key_origin, recipe_provenance
from hashkit.recipe.overrides import apply_overrides
from hashkit.recipe.schema import (
    ComponentRef,
    DataSection,
    EvalSection,
    ModelSection,
    OptimizerSection,
    Published,
    Recipe,
    ScheduleSection,
    TrainSection,
)
from hashkit.recipe.toml_loader import load_toml_with_extends, resolve_recipe_path
from hashkit.recipe.upgrade import upgrade_saved_recipe

TOP_LEVEL = {
    "name", "description", "seed", "code_lengths", "model", "losses", "protocol", "data", "optimizer",
    "schedule", "train", "eval", "provenance",
}
#: the component tables of [model] (``[[model.attention]]``, a list, is read on its own)
MODEL_COMPONENTS = tuple(kind.name for kind in KIND_TABLE
                         if kind.recipe_key.startswith("model.") and not kind.recipe_key.endswith("[]"))


def load_recipe(
    source: str | Path | Mapping[str, Any],
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    *,
    saved_run: bool = False,
) -> Recipe:
    """Load and validate a recipe.

    ``source`` is a path (or a built-in recipe name such as ``"semicon-demo"``) or already-parsed data.
    ``overrides`` is ``{"train.amp": "bf16"}`` or ``["train.amp=bf16"]`` (``--set`` syntax).
    ``saved_run``: ``source`` is a run directory's ``recipe.toml``, which an older hashkit may have written:
    it is brought up to the current schema first (:mod:`hashkit.recipe.upgrade`, a
    :class:`~hashkit.errors.RecipeUpgradeWarning` per change).
    """
    if isinstance(source, Mapping):
        data, prov, file = copy.deepcopy(dict(source)), {}, "<recipe>"
        if "extends" in data:
            raise RecipeError("extends is only supported in recipe files", file=file, key="extends")
    else:
        path = resolve_recipe_path(source)
        data, prov = load_toml_with_extends(path)
        file = str(path)
    if saved_run:
        for note in upgrade_saved_recipe(data, file):
            warnings.warn(note, RecipeUpgradeWarning, stacklevel=2)
    apply_overrides(data, overrides, prov)
    resolve_dataset_root(data, prov, file)
    with recipe_provenance(prov):
        return validate_recipe_data(data, file=file, provenance=prov)


def resolve_dataset_root(data: dict[str, Any], prov: dict[str, str], file: str) -> None:
    """Make a relative ``data.dataset.root`` absolute, in place.

    A root written in a recipe file is relative to that file's directory (like ``extends``); one given with
    ``--set`` or in Python data is relative to the working directory. Storing it absolute means the run's
    saved ``recipe.toml`` finds the same data from any directory (resume, eval, encode).
    """
    section = data.get("data")
    dataset = section.get("dataset") if isinstance(section, dict) else None
    root = dataset.get("root") if isinstance(dataset, dict) else None
    if not isinstance(root, str) or not root:
        return
    path = Path(root).expanduser()
    if path.is_absolute():
        dataset["root"] = str(path)
        return
    origin = key_origin(prov, "data.dataset.root", file)
    base = Path(origin).resolve().parent if origin not in (None, "--set", "<recipe>") else Path.cwd()
    dataset["root"] = str(base / path)


def _origin(prov: dict[str, str], key: str, file: str) -> str:
    return key_origin(prov, key, file)


def _fail(message: str, key: str, file: str, prov: dict[str, str]) -> RecipeError:
    return RecipeError(message, file=_origin(prov, key, file), key=key)


def _component(kind: str, table: Any, key: str, file: str, prov: dict[str, str], *, allow_weight: bool = False) -> ComponentRef:
    try:
        return component_ref(kind, table, key, allow_weight=allow_weight)
    except Invalid as fail:
        raise _fail(fail.message, fail.key, file, prov) from None


def _scalar(tp: type, value: Any, key: str, file: str, prov: dict[str, str]) -> Any:
    try:
        return coerce_value(tp, value, key)
    except Invalid as fail:
        raise _fail(fail.message, key, file, prov) from None


def validate_recipe_data(data: dict[str, Any], *, file: str = "<recipe>", provenance: dict[str, str] | None = None) -> Recipe:
    prov = provenance or {}
    for key in data:
        if key not in TOP_LEVEL:
            close = difflib.get_close_matches(key, sorted(TOP_LEVEL), n=1) if len(key) < 200 else []
            hint = f"; closest: {close[0]!r}" if close else ""
            raise _fail(f"unknown key{hint}; expected one of: {', '.join(sorted(TOP_LEVEL))}", key, file, prov)

    name = _scalar(str, data.get("name", Path(file).stem if file != "<recipe>" else "recipe"), "name", file, prov)
    description = _scalar(str, data.get("description", ""), "description", file, prov)
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise _fail(f"expected int, found {found(seed)}", "seed", file, prov)
    lengths = data.get("code_lengths", [])
    if isinstance(lengths, int) and not isinstance(lengths, bool):
        lengths = [lengths]
    if not isinstance(lengths, list) or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in lengths):
        raise _fail(f"expected a list of positive ints, found {found(lengths)}", "code_lengths", file, prov)

    model = data.get("model")
    if not isinstance(model, dict):
        raise _fail(f"expected a [model] table, found {found(model)}", "model", file, prov)
    model = dict(model)
    if "channel_interaction" in model:
        raise _fail("there is no model-level channel interaction: nest it in the component that inserts it, "
                    'e.g. [model.aggregation] interaction = {name = "icon"}', "model.channel_interaction", file, prov)
    parts: dict[str, Any] = {}
    for key in MODEL_COMPONENTS:
        if key in model:
            parts[key] = _component(key, model.pop(key), f"model.{key}", file, prov)
    att = model.pop("attention", [])
    if isinstance(att, (dict, str)):
        att = [att]
    if not isinstance(att, list):
        raise _fail(f"expected a list of tables ([[model.attention]]), found {found(att)}", "model.attention", file, prov)
    attention = tuple(_component("attention", t, f"model.attention[{i}]", file, prov) for i, t in enumerate(att))
    for required in ("backbone", "aggregation"):
        if required not in parts:
            raise _fail(f"missing [model.{required}] table", f"model.{required}", file, prov)
    model_section = build_config(ModelSection, model, key="model", file=file, provenance=prov)
    if parts.get("hash_head") is not None and not lengths:
        raise _fail("a model with a hash head needs code_lengths, e.g. code_lengths = [12, 24, 32, 48]",
                    "code_lengths", file, prov)

    losses_data = data.get("losses", [])
    if isinstance(losses_data, dict):
        losses_data = [losses_data]
    if not isinstance(losses_data, list):
        raise _fail(f"expected a list of tables ([[losses]]), found {found(losses_data)}", "losses", file, prov)
    losses = tuple(
        _component("loss", t, f"losses[{i}]", file, prov, allow_weight=True) for i, t in enumerate(losses_data)
    )
    protocol = _component("training_protocol", data.get("protocol", {"name": "pointwise"}), "protocol", file, prov)

    if not isinstance(data.get("data", {}), dict):
        raise _fail(f"expected a [data] table, found {found(data.get('data'))}", "data", file, prov)
    data_section_raw = dict(data.get("data", {}))
    dataset_raw = data_section_raw.get("dataset", {"name": "demo"})
    dataset = _component("dataset", dataset_raw, "data.dataset", file, prov)
    if isinstance(dataset_raw, str):
        data_section_raw["dataset"] = {"name": dataset_raw}
    data_section = build_config(DataSection, data_section_raw, key="data", file=file, provenance=prov)

    sections = {}
    for key, cls in (("optimizer", OptimizerSection), ("schedule", ScheduleSection), ("train", TrainSection), ("eval", EvalSection)):
        raw = data.get(key, {})
        if not isinstance(raw, dict):
            raise _fail(f"expected a [{key}] table, found {found(raw)}", key, file, prov)
        sections[key] = build_config(cls, raw, key=key, file=file, provenance=prov)

    provenance_notes = data.get("provenance", {})
    if not isinstance(provenance_notes, dict):
        raise _fail(f"expected a [provenance] table, found {found(provenance_notes)}", "provenance", file, prov)
    published = provenance_notes.get("published", [])
    if not isinstance(published, list):
        raise _fail(f"expected an array of tables [[provenance.published]], found {found(published)}",
                    "provenance.published", file, prov)
    for i, entry in enumerate(published):  # checked here so a typo fails validation, not a bench report
        build_config(Published, entry if isinstance(entry, dict) else {"source": entry},
                     key=f"provenance.published[{i}]", file=file, provenance=prov)

    return Recipe(
        name=name,
        description=description,
        seed=seed,
        code_lengths=tuple(lengths),
        model=model_section,
        backbone=parts["backbone"],
        attention=attention,
        aggregation=parts["aggregation"],
        hash_head=parts.get("hash_head"),
        losses=losses,
        protocol=protocol,
        data=data_section,
        dataset=dataset,
        optimizer=sections["optimizer"],
        schedule=sections["schedule"],
        train=sections["train"],
        eval=sections["eval"],
        raw=data,
        source=file,
        provenance=provenance_notes,
        key_files=dict(prov),
    )
