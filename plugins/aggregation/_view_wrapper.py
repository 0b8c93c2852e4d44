"""Private: an aggregation that runs an inner aggregation and, in training, adds augmented views of the image.

Subclasses implement ``make_views(inp) -> {name: (B, 3, H, W)}`` (computed without gradient). The wrapper's
descriptors are the inner aggregation's, unchanged in train and eval mode; in training mode it adds
``extras["views"]`` (merged with any views the inner aggregation made), which ``HashingModel`` encodes with
the same model so the losses read ``extras["<view>.class_logits"]`` and friends (docs/architecture.md).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from hashkit.errors import ContractError
from hashkit.interfaces import Aggregation, AggregationInput, AggregationOutput, BuildContext


def check_stage(component: str, stage: str, ctx: BuildContext) -> None:
    """The stage a view is computed from must be one of the model's taps."""
    if ctx.stages and stage not in ctx.stages:
        raise ContractError(f"{component} needs stage {stage!r} tapped by the model (taps: {list(ctx.stages)}); "
                            f"set the component's 'stage' or add it to model.taps")


class ViewWrapper(Aggregation):
    """Inner aggregation + training views; see the module docstring."""

    def __init__(self, inner: Aggregation):
        super().__init__()
        self.inner = inner
        self.descriptor_dims = dict(inner.descriptor_dims)

    def make_views(self, inp: AggregationInput) -> dict[str, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def stage_features(self, inp: AggregationInput, stage: str, component: str) -> Tensor:
        if stage not in inp.stages:
            raise ContractError(f"{component}: the aggregation input has no stage {stage!r} "
                                f"(stages: {list(inp.stages)})")
        return inp.stages[stage]

    def forward(self, inp: AggregationInput) -> AggregationOutput:
        out = self.inner(inp)
        if self.training and inp.image is not None:
            views = dict(out.extras.get("views") or {})
            views.update(self.make_views(inp))
            out.extras["views"] = views
        return out


def view_example(config: dict[str, Any], view: str):
    """A tiny conformance example: 2 images of 32 px, a (2, 16, 4, 4) stage ``stage3``, the view checked."""
    import torch

    from hashkit.interfaces import FeatureSpec
    from hashkit.testing import ComponentExample

    g = torch.Generator().manual_seed(0)
    spec = FeatureSpec(16, 8)
    feats = torch.randn(2, 16, 4, 4, generator=g).relu()
    inputs = (AggregationInput(features=feats, stages={"stage3": feats}, image=torch.randn(2, 3, 32, 32, generator=g)),)

    def check(comp, out):
        made = out.extras["views"][view]
        if made.shape != (2, 3, 32, 32) or not torch.isfinite(made).all():
            raise AssertionError(f"view {view!r}: shape {tuple(made.shape)}, or non-finite values")

    return ComponentExample(config={"stage": "stage3", **config}, ctx=BuildContext(in_spec=spec, stages={"stage3": spec}),
                            inputs=inputs, check=check)
