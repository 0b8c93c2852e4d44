"""Bench files: methods x datasets x code lengths x seeds, each combination one *cell* (one training run).

A bench file is TOML (reference in docs/benchmarks.md)::

    name = "demo"
    code_lengths = [12, 24]
    seeds = [0]
    set = ["train.progress=false"]            # --set overrides for every cell

    [[methods]]
    recipe = "semicon-{dataset}"              # a file (relative to the bench file) or a built-in recipe name
    label = "SEMICON"                         # row label; default: the recipe's name
    set = []                                  # this method's overrides

    [[datasets]]
    name = "cub200"                           # table label; replaces {dataset} in recipe names
    dataset = { name = "cub200", root = "/data/CUB_200_2011", seen_fraction = 0.95 }   # replaces data.dataset
    set = []                                  # this dataset's overrides

A cell's recipe is the method's recipe with, in this order, the dataset table, the bench's ``set``, the
dataset's ``set``, the method's ``set``, ``seed = <seed>`` and the evaluation metrics the report draws
(``pr_curve``, ``precision@K``) applied. Every cell trains one code length of one seed into its own run
directory.
"""

from __future__ import annotations

import copy
import hashlib
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import attrs

from hashkit.errors import RecipeError
from hashkit.recipe.coerce import build_config
from hashkit.recipe.toml_loader import resolve_recipe_path
from hashkit.recipe.toml_writer import dumps_toml, dumps_value

#: recipe keys that do not change what a cell computes (a resumed or finished cell may differ in them)
RUNTIME_KEYS = (("train", "device"), ("train", "progress"), ("train", "tensorboard"), ("train", "log_every"),
                ("data", "num_workers"))


def _unique(what: str):
    def check(inst, attribute, value):
        names = [getattr(v, what) or getattr(v, "recipe", "") for v in value]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"'{attribute.name}' entries need distinct {what}s, found {dup[0]!r} twice")
    return check


def _non_empty(inst, attribute, value):
    if not value:
        raise ValueError(f"'{attribute.name}' must not be empty")


@attrs.frozen
class BenchMethod:
    """``[[methods]]``: a recipe (``{dataset}`` is replaced by the dataset entry's name) and its overrides."""

    recipe: str
    label: str = ""
    set: tuple[str, ...] = ()


@attrs.frozen
class BenchDataset:
    """``[[datasets]]``: a table label, an optional ``data.dataset`` replacement and overrides."""

    name: str
    dataset: dict[str, Any] | None = None
    set: tuple[str, ...] = ()


@attrs.frozen
class BenchFile:
    """The validated bench file."""

    methods: tuple[BenchMethod, ...] = attrs.field(validator=[_non_empty, _unique("label")])
    datasets: tuple[BenchDataset, ...] = attrs.field(validator=[_non_empty, _unique("name")])
    code_lengths: tuple[int, ...] = attrs.field(validator=[_non_empty, attrs.validators.deep_iterable(
        attrs.validators.ge(1))])
    name: str = ""
    description: str = ""
    seeds: tuple[int, ...] = attrs.field(default=(0,), validator=_non_empty)
    #: --set overrides for every cell
    set: tuple[str, ...] = ()
    #: protocols tabulated ("all" = query against database; the four open-set ones); empty = all the runs report
    protocols: tuple[str, ...] = ()
    #: the figure of the tables: a result key such as "map", "map_tie_aware", "map@1000"
    metric: str = "map"
    #: "selected" (the recipe's train.selection) or "last"
    model: Literal["selected", "last"] = "selected"
    #: k of the precision@k curves (added to every cell's eval.metrics)
    precision_at: tuple[int, ...] = (1, 5, 10, 20, 50, 100)
    #: code length of the overlaid PR and precision@k plots (0 = the longest)
    curves_at: int = 0
    #: table values are multiplied by this (100: mAP in points, as papers print it) and shown with these decimals
    scale: float = 100.0
    decimals: int = attrs.field(default=1, validator=attrs.validators.ge(0))


@attrs.frozen
class Cell:
    """One training run of the bench: a method on a dataset at one code length and seed."""

    index: int
    dataset: str
    method: str
    seed: int
    code_length: int
    recipe: Path
    overrides: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.dataset}/{slug(self.method)}/seed{self.seed}-L{self.code_length}"

    def describe(self) -> str:
        return f"{self.method} on {self.dataset}, seed {self.seed}, {self.code_length} bits"


@attrs.frozen
class Bench:
    """A loaded bench file: its definition, where it came from, and its raw data (written beside the results)."""

    file: BenchFile
    path: Path
    raw: dict[str, Any]

    @property
    def name(self) -> str:
        return self.file.name or self.path.stem

    def cells(self) -> list[Cell]:
        """Every cell, in table order: dataset, method, seed, code length."""
        out = []
        for ds in self.file.datasets:
            for method in self.file.methods:
                recipe = method_recipe(self, method, ds)
                base = self.overrides(method, ds)
                for seed in self.file.seeds:
                    for bits in self.file.code_lengths:
                        out.append(Cell(index=len(out), dataset=ds.name, method=method_label(method, recipe),
                                        seed=seed, code_length=bits, recipe=recipe,
                                        overrides=(*base, f"seed={seed}")))
        return out

    def overrides(self, method: BenchMethod, ds: BenchDataset) -> tuple[str, ...]:
        table = (f"data.dataset={dumps_value(ds.dataset)}",) if ds.dataset is not None else ()
        return (*table, *self.file.set, *ds.set, *method.set)


def slug(text: str) -> str:
    """A directory name for a label: anything but letters, digits, ``.``, ``-``, ``_`` becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "method"


def method_recipe(bench: Bench, method: BenchMethod, ds: BenchDataset) -> Path:
    """The method's recipe file for ``ds``: relative to the bench file, else a built-in recipe name."""
    text = method.recipe.replace("{dataset}", ds.name)
    local = bench.path.parent / text
    for candidate in (local, local.with_name(local.name + ".toml")):
        if candidate.is_file():
            return candidate
    path = resolve_recipe_path(text)
    if not path.is_file():
        raise RecipeError(f"recipe {text!r} not found (looked for {local} and the built-in recipes)",
                          file=str(bench.path), key="methods.recipe")
    return path


def method_label(method: BenchMethod, recipe: Path) -> str:
    return method.label or recipe.stem


def load_bench(path: str | Path) -> Bench:
    """Read and validate a bench file; errors are one line naming the file and the key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(f"bench file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"not valid TOML: {exc}", file=str(path)) from None
    file = build_config(BenchFile, raw, file=str(path))
    bench = Bench(file=file, path=path.resolve(), raw=raw)
    for ds in file.datasets:
        labels = [method_label(m, method_recipe(bench, m, ds)) for m in file.methods]
        slugs = [slug(x) for x in labels]
        if len(set(slugs)) != len(slugs):
            raise RecipeError(f"method labels {labels} do not give distinct directory names on {ds.name!r}",
                              file=str(path), key="methods.label")
    return bench


def recipe_digest(raw: dict[str, Any]) -> str:
    """sha256 of a resolved recipe without ``extends`` and the runtime-only keys (:data:`RUNTIME_KEYS`)."""
    data = copy.deepcopy(raw)
    data.pop("extends", None)
    for section, key in RUNTIME_KEYS:
        if isinstance(data.get(section), dict):
            data[section].pop(key, None)
    return "sha256:" + hashlib.sha256(dumps_toml(data).encode()).hexdigest()


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` (1 <= i <= n) -> ``(i, n)``."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise RecipeError(f"bad --shard {text!r}: expected i/n with 1 <= i <= n, e.g. 2/4")
    return int(m.group(1)), int(m.group(2))
