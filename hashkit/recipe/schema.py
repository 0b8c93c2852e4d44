"""The typed schema of a recipe: the sections that are not components, and component references.

A component reference (:class:`~hashkit.interfaces.ComponentRef`) is a table ``{name = "...", <parameters of
that component>}``; its parameters are validated against the config class the component registered, and
tables nested in it (a component's ``nested`` fields) the same way. See ``docs/recipes.md`` for the reference.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from hashkit.interfaces.component_ref import ComponentRef, nested_list


def _positive(inst, attribute, value):
    if value is not None and value <= 0:
        raise ValueError(f"'{attribute.name}' must be > 0, found {value}")


def _non_negative(inst, attribute, value):
    if value is not None and value < 0:
        raise ValueError(f"'{attribute.name}' must be >= 0, found {value}")


@attrs.frozen
class ModelSection:
    """``[model]``: which backbone stages are tapped; the components live in sub-tables."""

    #: backbone stages the model reads, in order; all of them reach the aggregation
    taps: tuple[str, ...] = ()
    #: the stage fed to the attention cascade and as ``AggregationInput.features`` (default: last tap)
    tap: str | None = None
    #: sign(0) maps to +1 when binarising (hashkit convention); "zero" keeps 0 (official-code parity)
    zero_to: Literal["plus_one", "zero"] = "plus_one"


@attrs.frozen
class TransformSection:
    """``[data.train_transform]`` / ``[data.eval_transform]``: the image pipeline."""

    #: train: RandomResizedCrop(crop) + flip; eval: Resize(resize) + CenterCrop(crop)
    kind: Literal["train", "eval"] = "eval"
    resize: int = 256
    crop: int = 224
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (0.75, 4.0 / 3.0)
    hflip: bool = True
    #: how ``resize`` applies: "shorter" side to ``resize`` (aspect kept), or "square" (squash to resize x resize)
    resize_mode: Literal["shorter", "square"] = "shorter"
    #: train only: "random_resized" = RandomResizedCrop(crop, scale, ratio); "random" = Resize(resize,
    #: resize_mode) + RandomCrop(crop) (WS-DAN)
    crop_mode: Literal["random_resized", "random"] = "random_resized"
    #: train only: ColorJitter ranges after the flip (0 = off), torchvision's meaning
    brightness: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    contrast: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    saturation: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    hue: float = attrs.field(default=0.0, validator=[attrs.validators.ge(0.0), attrs.validators.le(0.5)])
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    #: grayscale inputs (the demo data) are repeated to 3 channels either way


@attrs.frozen
class SamplerSection:
    """``[data.sampler]``: ``random`` (shuffled), ``sequential``, or ``pk`` (P classes x K images per batch)."""

    name: Literal["random", "sequential", "pk"] = "random"
    p: int = attrs.field(default=8, validator=_positive)
    k: int = attrs.field(default=4, validator=_positive)


@attrs.frozen
class DataSection:
    """``[data]``: dataset, batching and transforms."""

    dataset: dict[str, Any] = attrs.field(factory=lambda: {"name": "demo"})
    batch_size: int = attrs.field(default=16, validator=_positive)
    eval_batch_size: int = attrs.field(default=16, validator=_positive)
    num_workers: int = attrs.field(default=0, validator=_non_negative)
    drop_last: bool = False
    skip_bad_images: bool = False
    sampler: SamplerSection = SamplerSection()
    train_transform: TransformSection = TransformSection(kind="train")
    eval_transform: TransformSection = TransformSection(kind="eval")


@attrs.frozen
class ParamGroup:
    """One parameter group: parameters whose name contains ``match`` get ``lr * lr_mult``."""

    match: str
    lr_mult: float = 1.0
    weight_decay: float | None = None


@attrs.frozen
class OptimizerSection:
    """``[optimizer]``."""

    name: Literal["sgd", "adam", "adamw", "rmsprop"] = "sgd"
    lr: float = attrs.field(default=2.5e-4, validator=_positive)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    param_groups: tuple[ParamGroup, ...] = ()


@attrs.frozen
class ScheduleSection:
    """``[schedule]``: learning-rate schedule stepped per ``unit`` (round = outer iteration or epoch)."""

    name: Literal["constant", "multistep", "cosine", "step", "exponential"] = "constant"
    unit: Literal["round", "epoch", "step"] = "round"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    step_size: int = 1
    warmup: int = 0
    min_lr: float = 0.0


@attrs.frozen
class TrainSection:
    """``[train]``: device, precision, checkpoints, model selection."""

    device: str = "auto"
    amp: Literal["none", "bf16", "fp16"] = "none"
    channels_last: bool = False
    compile: bool = False
    grad_clip: float = attrs.field(default=0.0, validator=_non_negative)
    #: "last", "best_val" (validation split carved from train), "best_query" (the official, test-selected)
    selection: Literal["last", "best_val", "best_query"] = "last"
    val_fraction: float = 0.1
    #: evaluate every N rounds (0 = only at the end)
    eval_every: int = attrs.field(default=0, validator=_non_negative)
    #: evaluate after exactly these rounds (1-based; the last round always counts); replaces eval_every.
    #: DSH_Analysis: [5, 10, 15, 20, 25, 30, 35, 36, 37, 38, 39, 40]
    eval_rounds: tuple[int, ...] = attrs.field(default=(), validator=attrs.validators.deep_iterable(
        attrs.validators.ge(1)))
    #: write a checkpoint every N optimiser steps (0 = at the end of each round only)
    checkpoint_every: int = attrs.field(default=0, validator=_non_negative)
    log_every: int = attrs.field(default=10, validator=_positive)
    tensorboard: bool = False
    progress: bool = True
    #: freeze parameters whose name contains one of these strings
    freeze: tuple[str, ...] = ()
    deterministic: bool = True


@attrs.frozen
class EvalSection:
    """``[eval]``: what is measured after training."""

    #: metric components (names or tables); ``map`` is always computed, ``<name>@<k>`` is short for
    #: ``{name = "<name>@k", k = [<k>]}``
    metrics: tuple[ComponentRef, ...] = nested_list("metric", default=("map",))
    #: database codes: "learned" (protocol's B, ADSH family), "label" (codes a label-derived protocol assigns
    #: to the training items, FISH/CHN), "encoded" (through the network); several are scored side by side
    database: tuple[Literal["learned", "label", "encoded"], ...] = ("encoded",)
    #: mAP@k cut-offs (0 = all)
    topk: tuple[int, ...] = (0,)
    #: "index" (stable, by database index) or "tie_aware" headline figure (both are always reported)
    ties: Literal["index", "tie_aware"] = "index"
    #: official SEMICON parity: drop the last-ranked database item (topk = -1 slice)
    drop_last_item: bool = False
    #: evaluate the real-valued descriptor by cosine similarity too
    descriptor: bool = False
    #: limit the query and database sizes (0 = all): quick checks on big sets
    max_queries: int = 0
    max_database: int = 0


@attrs.frozen
class Published:
    """One ``[[provenance.published]]`` entry of a recipe: numbers a paper or log reports for it."""

    #: where the numbers come from (repository @ commit and file, paper table)
    source: str
    #: {code length: value}, on ``scale`` (100 = mAP in points)
    values: dict[str, float]
    #: "all" (query against database) or an open-set protocol
    protocol: Literal["all", "seen@seen", "seen@all", "unseen@unseen", "unseen@all"] = "all"
    #: the dataset component it was measured on ("" = the recipe's)
    dataset: str = ""
    seen_fraction: float = 1.0
    #: the result key it corresponds to ("map" = mAP@all)
    metric: str = "map"
    #: database kind ("" = not stated)
    database: Literal["", "learned", "label", "encoded"] = ""
    #: model selection of the published number ("last", "best_query" = best on the test queries, ...)
    selection: str = ""
    scale: float = 100.0
    note: str = ""


@attrs.frozen
class Recipe:
    """A fully resolved, validated recipe."""

    name: str
    description: str
    seed: int
    code_lengths: tuple[int, ...]
    model: ModelSection
    backbone: ComponentRef
    attention: tuple[ComponentRef, ...]
    aggregation: ComponentRef
    hash_head: ComponentRef | None
    losses: tuple[ComponentRef, ...]
    protocol: ComponentRef
    data: DataSection
    dataset: ComponentRef
    optimizer: OptimizerSection
    schedule: ScheduleSection
    train: TrainSection
    eval: EvalSection
    #: the merged recipe data after extends and overrides (what is saved beside a run)
    raw: dict[str, Any] = attrs.field(eq=False, repr=False)
    source: str = ""
    #: free-form notes: where values come from, official logged numbers
    provenance: dict[str, Any] = attrs.field(factory=dict, eq=False)
    #: ``dotted key -> file`` (or ``"--set"``) that set it, for errors found after loading
    key_files: dict[str, str] = attrs.field(factory=dict, eq=False, repr=False)

    def origin(self, key: str | None) -> str:
        """The file (or ``--set``) that set ``key`` or its nearest enclosing table; the recipe's file if none."""
        from hashkit.recipe.provenance import key_origin

        return (key_origin(self.key_files, key, None) if key else None) or self.source
