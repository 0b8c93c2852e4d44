"""``check_recipe``: everything ``hashkit recipe validate`` checks before any training.

Loading the recipe checks its keys, types, component names and parameters (nested ones and ``[eval]
metrics`` included). Then, for every code length, the model is built on the meta device (shapes only: no
memory, no initialisation, no weight files read), the training protocol and the losses are built, and the
metric components. That checks stage taps, channel contracts between components, what an aggregation needs
of the backbone (stage copies), bit splits of the hash head, loss requirements against the model and the
protocol, and ``[eval] database`` against the protocol. Building the dataset is tried for the real class and
item counts; when its files are not there, placeholders are used and a note says so (data and weight files
are the training machine's business).

Every problem is a :class:`~hashkit.errors.RecipeError`: one line naming the file that set the key, the key
and what is wrong.
"""

from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode

from hashkit.errors import CheckpointError, ContractError, DataError, RecipeError
from hashkit.recipe.schema import Recipe

#: class and training-item counts assumed for building when the dataset cannot be loaded (losses with a memory
#: bank of the training set are sized from the latter)
PLACEHOLDER_CLASSES = 2
PLACEHOLDER_TRAIN = 4

#: in-place random fills (weight initialisation) that do nothing on a meta tensor
RANDOM_FILLS = {"normal_", "uniform_", "bernoulli_", "exponential_", "geometric_", "log_normal_", "cauchy_",
                "random_"}


class ShapesOnly(TorchFunctionMode):
    """Builds on the meta device; random fills of meta tensors (initialisation) are skipped: there is no data
    to fill, and torch's meta implementation of some of them imports torch._dynamo (seconds)."""

    def __enter__(self):
        self._device = torch.device("meta")
        self._device.__enter__()
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        return self._device.__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in RANDOM_FILLS and args and isinstance(args[0], torch.Tensor) \
                and args[0].is_meta:
            return args[0]
        return func(*args, **(kwargs or {}))


def check_recipe(recipe: Recipe) -> list[str]:
    """Build everything ``recipe`` trains for every code length (model on the meta device); return notes.

    Raises :class:`~hashkit.errors.RecipeError` naming the file and key of the first problem found.
    """
    from hashkit.assemble import build_dataset, build_losses, build_model, build_protocol
    from hashkit.evaluation.scoring import metric_set

    notes = []
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
            with ShapesOnly():
                model = build_model(recipe, length, num_classes)
            protocol = build_protocol(recipe, length, num_classes, num_train)
            build_losses(recipe, model, protocol, length, num_classes, num_train or PLACEHOLDER_TRAIN)
        except ContractError as exc:
            raise _located(recipe, exc, length if len(lengths) > 1 else None) from None
    try:
        metric_set(recipe.eval.metrics, topk=recipe.eval.topk, drop_last_item=recipe.eval.drop_last_item)
    except ContractError as exc:
        raise _located(recipe, exc, None) from None
    return notes


def _located(recipe: Recipe, exc: ContractError, length: int | None) -> RecipeError:
    at = f"at {length} bits: " if length is not None else ""
    return RecipeError(at + str(exc), file=recipe.origin(getattr(exc, "key", None)))
