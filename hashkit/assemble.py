"""Building components, models and training objects from a recipe.

``hashkit.build(recipe)`` returns a :class:`Built` with the model (an ``nn.Module``), the loss set, the
training protocol and the dataset. Everything is built through the registry, so plugins and built-ins are
treated alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import attrs
import torch
from torch import nn

from hashkit.components import build_ref, make_component
from hashkit.errors import ContractError, RecipeError
from hashkit.interfaces import (
    BuildContext,
    EpochStart,
    FeatureSpec,
    LossInputs,
    LossResult,
    RetrievalData,
    TrainingProtocol,
)
from hashkit.model.hashing_model import HashingModel, component_label
from hashkit.recipe.load import load_recipe
from hashkit.recipe.schema import Recipe

__all__ = ["Built", "LossSet", "build", "build_dataset", "build_losses", "build_model", "build_protocol", "build_ref",
           "make_component"]


class LossSet(nn.Module):
    """The recipe's losses with their weights: ``total = sum(weight_i * loss_i)``, parts named ``name`` or
    ``name.part`` for logging."""

    def __init__(self, losses: list[tuple[str, float, nn.Module]]):
        super().__init__()
        self.names = [n for n, _, _ in losses]
        self.weights = [w for _, w, _ in losses]
        self.losses = nn.ModuleList([m for _, _, m in losses])

    def forward(self, inputs: LossInputs) -> LossResult:
        total = None
        parts: dict[str, torch.Tensor] = {}
        for name, weight, loss in zip(self.names, self.weights, self.losses):
            res = loss(inputs)
            value = (res.value if res.value.dtype == torch.float64 else res.value.float()) * weight
            total = value if total is None else total + value
            parts[name] = res.value.detach()
            for key, part in res.parts.items():
                parts[f"{name}.{key}"] = part.detach()
        if total is None:
            raise ContractError("the recipe has no losses ([[losses]] is empty)")
        return LossResult(value=total, parts=parts)

    def begin_epoch(self, at: EpochStart) -> None:
        """Tell every loss that an epoch begins (``Loss.begin_epoch``: method schedules, bank resets)."""
        for loss in self.losses:
            hook = getattr(loss, "begin_epoch", None)
            if hook is not None:
                hook(at)


@attrs.define
class Built:
    recipe: Recipe
    code_length: int | None
    model: HashingModel
    losses: LossSet
    protocol: TrainingProtocol
    data: RetrievalData | None


def build_dataset(recipe: Recipe) -> RetrievalData:
    return build_ref(recipe.dataset, BuildContext())


def build_model(recipe: Recipe, code_length: int | None = None, num_classes: int | None = None) -> HashingModel:
    """The recipe's model for one code length."""
    if code_length is None and recipe.hash_head is not None:
        code_length = recipe.code_lengths[0]
    ctx = BuildContext(code_length=code_length, num_classes=num_classes)
    backbone = build_ref(recipe.backbone, ctx)
    taps = recipe.model.taps or (recipe.model.tap or list(backbone.stage_specs)[-1],)
    tap = recipe.model.tap or taps[-1]
    for t in (*taps, tap):
        if t not in backbone.stage_specs:
            key = "model.taps" if t in taps else "model.tap"
            raise RecipeError(
                f"backbone {recipe.backbone.name!r} has no stage {t!r}; its stages are {list(backbone.stage_specs)}",
                file=recipe.origin(key), key=key,
            )
    spec = backbone.stage_specs[tap]
    attention = []
    num_maps = 0
    for ref in recipe.attention:
        att = build_ref(ref, ctx.evolve(in_spec=spec))
        if att.in_channels != spec.channels:
            raise ContractError(
                f"{ref.key}: attention {ref.name!r} expects {att.in_channels} channels but receives {spec.channels}"
            )
        spec = FeatureSpec(att.out_channels, spec.stride)
        num_maps += att.num_maps
        attention.append(att)

    stages = {t: backbone.stage_specs[t] for t in dict.fromkeys((*taps, tap))}
    agg = build_ref(recipe.aggregation, ctx.evolve(
        in_spec=spec, stages=stages, num_maps=num_maps, stage_builder=backbone.stage_builder(),
    ))
    head = None
    if recipe.hash_head is not None:
        head = build_ref(recipe.hash_head, ctx.evolve(descriptor_dims=dict(agg.descriptor_dims)))
        if head.code_length != code_length:
            raise ContractError(
                f"model.hash_head ({recipe.hash_head.name!r}) produces {head.code_length} bits "
                f"but the recipe asks for {code_length}"
            )
    try:
        return HashingModel(backbone=backbone, aggregation=agg, hash_head=head, attention=attention,
                            taps=tuple(dict.fromkeys((*taps, tap))), tap=tap, zero_to=recipe.model.zero_to)
    except ContractError as exc:
        raise ContractError(f"{recipe.source}: {exc}") from None


def build_protocol(recipe: Recipe, code_length: int | None, num_classes: int | None,
                   num_train: int | None) -> TrainingProtocol:
    """The recipe's training protocol, checked against what ``[eval] database`` asks of it."""
    protocol = build_ref(recipe.protocol, BuildContext(code_length=code_length, num_classes=num_classes,
                                                       num_train=num_train))
    provides = getattr(protocol, "database", "encoded")
    for kind in ("learned", "label"):
        if kind in recipe.eval.database and provides != kind:
            what = ("learns none and derives none from labels (it encodes the database)" if provides == "encoded"
                    else f"provides {provides!r} codes")
            raise RecipeError(f"{kind!r} needs database codes the training protocol provides, and "
                              f"{recipe.protocol.name!r} {what}; use [\"encoded\"]"
                              + (f" or [\"{provides}\"]" if provides != "encoded" else ""),
                              file=recipe.origin("eval.database"), key="eval.database")
    return protocol


def build_losses(recipe: Recipe, model: HashingModel, protocol: TrainingProtocol,
                 code_length: int | None, num_classes: int | None, num_train: int | None = None) -> LossSet:
    ctx = BuildContext(
        code_length=code_length, num_classes=num_classes, num_train=num_train,
        descriptor_dims=dict(model.aggregation.descriptor_dims),
        head_classes=getattr(model.hash_head, "num_classes", 0) if model.hash_head is not None else 0,
    )
    built = []
    for ref in recipe.losses:
        loss = build_ref(ref, ctx)
        for need in getattr(loss, "requires", ()):
            missing = None
            if need in ("codes", "logits") and model.hash_head is None:
                missing = "the model has no hash head"
            elif need == "class_logits" and not ctx.head_classes:
                missing = (f"{component_label(model.hash_head, 'hash_head') if model.hash_head else 'the model'} "
                           "has no classifier (num_classes = 0)")
            elif need.startswith("protocol.") and need.split(".", 1)[1] not in getattr(protocol, "provides", ()):
                missing = f"training_protocol {recipe.protocol.name!r} does not provide {need.split('.', 1)[1]!r}"
            if missing:
                error = ContractError(f"{ref.key}: loss {ref.name!r} needs {need!r} but {missing}")
                error.key = ref.key
                raise error
        built.append((ref.name if ref.name not in [b[0] for b in built] else f"{ref.name}_{len(built)}", ref.weight, loss))
    return LossSet(built)


def build(recipe: Recipe | str | Path | Mapping[str, Any], code_length: int | None = None, *,
          overrides: Mapping[str, Any] | None = None, data: RetrievalData | None = None,
          load_data: bool = True) -> Built:
    """Build the model and training objects of a recipe for one code length (default: the first)."""
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, overrides)
    elif overrides:
        raise ValueError("overrides apply when loading: pass a path or data, not a loaded Recipe")
    if code_length is None and recipe.code_lengths:
        code_length = recipe.code_lengths[0]
    if data is None and load_data:
        data = build_dataset(recipe)
    num_classes = data.num_classes if data is not None else None
    model = build_model(recipe, code_length, num_classes)
    num_train = len(data.split("train")) if data is not None else None
    protocol = build_protocol(recipe, code_length, num_classes, num_train)
    losses = build_losses(recipe, model, protocol, code_length, num_classes, num_train)
    return Built(recipe=recipe, code_length=code_length, model=model, losses=losses, protocol=protocol, data=data)
