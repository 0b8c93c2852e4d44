"""HashingModel: backbone -> attention cascade -> aggregation -> hash head, with contracts checked.

Data flow (shapes for one batch of B images)::

    x (B,3,H,W) ─ backbone(taps) ─▶ stages {tap: (B,C_t,H_t,W_t)}
                                    features = stages[tap]
                 attention[0..]  ─▶ features (B,C',H_t,W_t), maps (B,K,H_t,W_t) concatenated
                 aggregation     ─▶ descriptors {name: (B,D_name)}
                 hash_head       ─▶ logits, codes (B,L), class_logits (B,C)        (optional)

Views (training only) reach the losses as extras ``"<name>.<field>"`` (``codes``, ``logits``,
``class_logits``, ``descriptor``):

- image views: an attention or aggregation extra ``"views"`` ``{name: (B,3,H,W)}`` is encoded by the whole
  model (WS-DAN's attention crops);
- feature views: attention ``i``'s extra ``"feature_views"`` ``{name: (features, maps)}`` (its output
  features and maps for another view of the same images, e.g. FDH-MFE's background ``x ⊙ (1 - M)``) goes
  through the rest of the cascade, the aggregation and the head, with attention ``i``'s maps replaced by
  the view's. BatchNorm layers normalise the view with its own batch statistics but do not fold them into
  their running statistics, so evaluation statistics stay those of the model's own view.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
from torch import Tensor, nn

from hashkit.errors import ContractError
from hashkit.interfaces import Aggregation, AggregationInput, Attention, Backbone, HashHead
from hashkit.model.outputs import ModelOutput


def component_label(module: nn.Module, role: str) -> str:
    name = getattr(module, "registered_name", None) or type(module).__name__
    return f"{role} {name!r}"


class HashingModel(nn.Module):
    """The composed model. Build it from a recipe with :func:`hashkit.build` or directly from instances."""

    def __init__(
        self,
        backbone: Backbone,
        aggregation: Aggregation,
        hash_head: HashHead | None = None,
        attention: Sequence[Attention] = (),
        taps: Sequence[str] = (),
        tap: str | None = None,
        zero_to: str = "plus_one",
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.attention = nn.ModuleList(attention)
        self.aggregation = aggregation
        self.hash_head = hash_head
        stages = list(backbone.stage_specs)
        self.taps = tuple(taps) if taps else (tap or stages[-1],)
        self.tap = tap or self.taps[-1]
        if self.tap not in self.taps:
            self.taps = (*self.taps, self.tap)
        self.zero_to = zero_to
        check_contracts(self)

    @property
    def code_length(self) -> int | None:
        return self.hash_head.code_length if self.hash_head is not None else None

    @property
    def descriptor_dim(self) -> int:
        return sum(self.aggregation.descriptor_dims.values())

    def forward(self, x: Tensor, *, views: bool = True) -> ModelOutput:
        """One forward pass. In training, an attention or aggregation extra ``"views"`` (``{name: (B,3,H,W)}``,
        e.g. WS-DAN crops) is encoded by this same model and returned as extras ``"<name>.<field>"`` for
        ``codes``, ``logits``, ``class_logits`` and ``descriptor`` (views of views are not made)."""
        stages = self.backbone(x, self.taps)
        features = stages[self.tap]
        maps: list[Tensor | None] = []
        extras: dict = {}
        feature_views: dict[str, tuple[int, Tensor, Tensor | None]] = {}
        for i, att in enumerate(self.attention):
            out = att(features)
            features = out.features
            maps.append(out.maps)
            extras.update({k: v for k, v in out.extras.items() if k != "feature_views"})
            for name, (view_features, view_maps) in out.extras.get("feature_views", {}).items():
                feature_views[name] = (i, view_features, view_maps)
        result = self._aggregate_and_hash(features, maps, stages, x)
        result.extras = {**extras, **result.extras}
        pending_views = result.extras.get("views")
        if views and self.training and pending_views:
            for name, images in pending_views.items():
                _add_view(result, name, self.forward(images, views=False))
        if views and self.training and feature_views:
            with _running_stats_kept(self):
                for name, (i, view_features, view_maps) in feature_views.items():
                    view_map_list = [*maps[:i], view_maps]
                    for att in self.attention[i + 1:]:  # the rest of the cascade, on the view
                        out = att(view_features)
                        view_features = out.features
                        view_map_list.append(out.maps)
                    _add_view(result, name, self._aggregate_and_hash(view_features, view_map_list, stages, x))
        return result

    def _aggregate_and_hash(self, features: Tensor, maps: list[Tensor | None], stages: dict[str, Tensor],
                            image: Tensor) -> ModelOutput:
        present = [m for m in maps if m is not None]
        all_maps = torch.cat(present, dim=1) if present else None
        agg = self.aggregation(AggregationInput(features=features, maps=all_maps, stages=stages, image=image))
        descriptor = torch.cat(list(agg.descriptors.values()), dim=1)
        result = ModelOutput(descriptor=descriptor, descriptors=agg.descriptors, maps=all_maps,
                             extras=dict(agg.extras))
        if self.hash_head is not None:
            head = self.hash_head(agg.descriptors)
            result.codes, result.logits, result.class_logits = head.codes, head.logits, head.class_logits
        return result

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """Binary codes ``(B, L)`` as float ±1 (``sign(0) -> +1`` unless ``zero_to == "zero"``).

        Runs in eval mode whatever mode the model is in (restored afterwards), so BatchNorm uses its running
        statistics and an image gets the same code in any batch, unless a component declares
        ``eval_batch_dependent`` (SEM with ``sigma = "batch"``; :mod:`hashkit.model.capabilities`).
        """
        from hashkit.codes.binarize import binarize

        was_training = self.training
        self.eval()
        try:
            out = self(x)
        finally:
            self.train(was_training)
        if out.codes is None:
            raise ContractError("this model has no hash head: use its descriptor (model(x).descriptor)")
        return binarize(out.codes, zero_to=self.zero_to)


def _add_view(result: ModelOutput, name: str, view: ModelOutput) -> None:
    for field in ("codes", "logits", "class_logits", "descriptor"):
        value = getattr(view, field)
        if value is not None:
            result.extras[f"{name}.{field}"] = value


@contextlib.contextmanager
def _running_stats_kept(module: nn.Module) -> Iterator[None]:
    """BatchNorm layers in training mode use batch statistics but leave their running statistics unchanged."""
    norms = [m for m in module.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats]
    saved = [(m, m.momentum, m.num_batches_tracked.clone()) for m in norms]
    for m in norms:
        m.momentum = 0.0  # running = (1 - 0) * running + 0 * batch
    try:
        yield
    finally:
        for m, momentum, tracked in saved:
            m.momentum = momentum
            m.num_batches_tracked.copy_(tracked)


def check_contracts(model: HashingModel) -> None:
    """Check every pair of neighbouring components at construction; a mismatch names both.

    Declared attributes are checked (the backbone's stages, attention ``in_channels``/``out_channels``, the
    head's ``descriptor_dims``), and so is what each component was built for (``built_for``, recorded by
    :func:`hashkit.assemble.make_component`): the channels the aggregation was built to receive against the
    tapped stage after the attention cascade, the stages it reads against the model's taps, the number of
    attention maps, and the descriptors the head was built for against the aggregation's.
    """
    bb = model.backbone
    bb_label = component_label(bb, "backbone")
    for tap in model.taps:
        if tap not in bb.stage_specs:
            raise ContractError(f"model taps stage {tap!r} but {bb_label} has stages {list(bb.stage_specs)}")
    channels = bb.stage_specs[model.tap].channels
    prev = f"{bb_label} stage {model.tap!r}"
    num_maps = 0
    for i, att in enumerate(model.attention):
        label = component_label(att, f"attention[{i}]")
        if att.in_channels != channels:
            raise ContractError(f"{prev} gives {channels} channels but {label} expects {att.in_channels}")
        channels = att.out_channels
        num_maps += int(getattr(att, "num_maps", 0) or 0)
        prev = label
    agg = model.aggregation
    agg_label = component_label(agg, "aggregation")
    made = getattr(agg, "built_for", None)
    if made:
        if made.get("in_channels") is not None and made["in_channels"] != channels:
            raise ContractError(f"{prev} gives {channels} channels but {agg_label} was built for "
                                f"{made['in_channels']} (build it with BuildContext(in_spec=...) of stage "
                                f"{model.tap!r}, or tap the stage it was built for)")
        for stage, stage_channels in made.get("stages", {}).items():
            if stage not in model.taps:
                raise ContractError(f"{agg_label} was built to read stage {stage!r} but the model taps "
                                    f"{list(model.taps)} ({bb_label})")
            if bb.stage_specs[stage].channels != stage_channels:
                raise ContractError(f"{bb_label} stage {stage!r} gives {bb.stage_specs[stage].channels} channels "
                                    f"but {agg_label} was built for {stage_channels}")
        if made.get("num_maps") and made["num_maps"] != num_maps:
            raise ContractError(f"the attention cascade gives {num_maps} maps but {agg_label} was built for "
                                f"{made['num_maps']}")
    head = model.hash_head
    if head is not None:
        agg_dims = dict(agg.descriptor_dims)
        head_made = getattr(head, "built_for", None) or {}
        for expected in (getattr(head, "descriptor_dims", None), head_made.get("descriptor_dims")):
            if expected and dict(expected) != agg_dims:
                raise ContractError(f"{agg_label} gives descriptors {agg_dims} but "
                                    f"{component_label(head, 'hash_head')} expects {dict(expected)}")
