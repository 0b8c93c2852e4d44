"""``check_recipe``: everything ``hashkit recipe validate`` checks before any training.

Loading the recipe checks its keys, types, component names and parameters (nested ones and ``[eval]
metrics`` included). Then, for every code length, the model is built on the meta device (shapes only: no
memory, no initialisation, no weight files read), the training protocol and the losses are built, and the
metric components. That checks stage taps, channel contracts between components, what an aggregation needs
of the backbone (stage copies), bit splits of the hash head, loss requirements against the model and the
protocol, and ``[eval] database`` against the protocol. Building the dataset is tried for the real class and
item counts; when its files are not there, placeholders are used and a note says so (data and weight files
are the training machine's business). With the real data, values that are accepted but would not act as
written (clamped sample counts, milestones beyond the end of training) come back as warnings
(:mod:`hashkit.training.start_checks`), the same ones a run prints and logs at its start.

Every problem is a :class:`~hashkit.errors.RecipeError`: one line naming the file that set the key, the key
and what is wrong.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict

import attrs
import torch
from torch.overrides import TorchFunctionMode

from hashkit.errors import CheckpointError, ContractError, DataError, RecipeError
from hashkit.recipe.schema import Recipe
from hashkit.registry import Registry, get_registry

#: class and training-item counts assumed for building when the dataset cannot be loaded (losses with a memory
#: bank of the training set are sized from the latter)
PLACEHOLDER_CLASSES = 2
PLACEHOLDER_TRAIN = 4

#: in-place random fills (weight initialisation) that do nothing on a meta tensor
RANDOM_FILLS = {"normal_", "uniform_", "bernoulli_", "exponential_", "geometric_", "log_normal_", "cauchy_",
                "random_"}

#: every in-place function that only writes values into its first argument (keeping its shape): the random
#: fills, constant fills and torch.nn.init's initialisers, skipped whole (an initialiser's own inner calls
#: do not pass through the mode, so skipping only the fills would leave them running torch's Python
#: decompositions: most of the build time of a ResNet-50)
VALUE_WRITES = RANDOM_FILLS | {"fill_", "zero_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
                               "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
                               "orthogonal_", "sparse_"}


class ShapesOnly(TorchFunctionMode):
    """Builds on the meta device; value writes into meta tensors (initialisation, :data:`VALUE_WRITES`) are
    skipped: there is no data to write, torch's meta implementation of some of them imports torch._dynamo
    (seconds), and the others run Python decompositions (most of the time of a meta build)."""

    def __enter__(self):
        self._device = torch.device("meta")
        self._device.__enter__()
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        return self._device.__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") in VALUE_WRITES:
            # torch.nn.init's initialisers pass their tensor by keyword
            target = args[0] if args else kwargs.get("tensor")
            if isinstance(target, torch.Tensor) and target.is_meta:
                return target
        return func(*args, **kwargs)


#: how many meta models :func:`check_recipe` keeps for reuse
MODEL_MEMO_SIZE = 8

# meta models built, per registry (entries are only ever added to one, so a model built stays valid), keyed
# by everything build_model reads from the recipe: recipes that differ only outside the model (the
# per-dataset variants of a method) are built once when validated in one process
_MODELS: weakref.WeakKeyDictionary[Registry, OrderedDict[str, torch.nn.Module]] = weakref.WeakKeyDictionary()


def _meta_model(recipe: Recipe, length: int | None, num_classes: int) -> torch.nn.Module:
    from hashkit.assemble import build_model

    key = repr((recipe.backbone, recipe.attention, recipe.aggregation, recipe.hash_head, recipe.model, length,
                num_classes))
    memo = _MODELS.setdefault(get_registry(), OrderedDict())
    if key in memo:
        memo.move_to_end(key)
        return memo[key]
    with ShapesOnly():
        model = build_model(recipe, length, num_classes)
    if " at 0x" not in key:  # a config whose repr names an object's address is not a reliable key
        memo[key] = model
        if len(memo) > MODEL_MEMO_SIZE:
            memo.popitem(last=False)
    return model


@attrs.frozen
class Preflight:
    """What :func:`preflight` found short of an error: ``notes`` (what could not be checked) and
    ``warnings`` (values accepted but clamped or without effect)."""

    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def check_recipe(recipe: Recipe) -> list[str]:
    """Build everything ``recipe`` trains for every code length (model on the meta device); return notes.

    Raises :class:`~hashkit.errors.RecipeError` naming the file and key of the first problem found.
    """
    return list(preflight(recipe).notes)


def preflight(recipe: Recipe) -> Preflight:
    """:func:`check_recipe` with the warnings too (what ``hashkit recipe validate`` prints)."""
    from hashkit.assemble import build_dataset, build_losses, build_protocol
    from hashkit.evaluation.scoring import metric_set
    from hashkit.training.start_checks import recording, schedule_warnings

    notes: list[str] = []
    found: list[str] = []
    num_classes, num_train = PLACEHOLDER_CLASSES, None
    try:
        data = build_dataset(recipe)
        num_classes, num_train = data.num_classes, len(data.split("train"))
    except (DataError, CheckpointError) as exc:
        notes.append(f"data not loaded ({exc}); built with {PLACEHOLDER_CLASSES} placeholder classes and "
                     f"{PLACEHOLDER_TRAIN} training items")
    except ContractError as exc:
        raise _located(recipe, exc, None) from None
    lengths = recipe.code_lengths if recipe.hash_head is not None else (None,)
    for length in lengths:
        try:
            model = _meta_model(recipe, length, num_classes)
            with recording() as clamped:
                protocol = build_protocol(recipe, length, num_classes, num_train)
            build_losses(recipe, model, protocol, length, num_classes, num_train or PLACEHOLDER_TRAIN)
        except ContractError as exc:
            raise _located(recipe, exc, length if len(lengths) > 1 else None) from None
        if num_train is not None:
            at = f"at {length} bits: " if len(lengths) > 1 and length is not None else ""
            found += [at + m for m in (*clamped, *schedule_warnings(recipe, protocol, num_train))]
    try:
        metric_set(recipe.eval.metrics, topk=recipe.eval.topk, drop_last_item=recipe.eval.drop_last_item)
    except ContractError as exc:
        raise _located(recipe, exc, None) from None
    return Preflight(tuple(notes), tuple(dict.fromkeys(found)))


def _located(recipe: Recipe, exc: ContractError, length: int | None) -> RecipeError:
    at = f"at {length} bits: " if length is not None else ""
    return RecipeError(at + str(exc), file=recipe.origin(getattr(exc, "key", None)))
