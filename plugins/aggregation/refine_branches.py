"""``refine_branches``: SEMICON's global and local refine branches (aassxun/SEMICON @ 885cbfe0,
``models/SEMICON.py``).

Two fresh copies of a later backbone stage (``stage``, default ``layer4``) are built with the backbone's
stage builder (``ctx.stage_builder``); the nested channel interaction ``interaction`` (ICON for SEMICON:
``interaction = {name = "icon", residual = "official"}``) is built once per insertion point and inserted
after the stage blocks listed in ``interaction_after`` (official: after blocks 1 and 2, giving
``[B0, B1, ICON, B2, ICON]``, one weight set per insertion and per copy). Without ``interaction`` the copies
are the plain stage.

- ``refine_global``: the stage copy on X, then global average pooling -> descriptor ``global``;
- ``refine_local``: ONE shared copy applied to ``X * A_k`` for each attention map k (broadcast over
  channels), GAP each -> descriptors ``local1 .. localK``. In train mode every pass computes its own
  BatchNorm batch statistics and updates the shared running statistics (K updates per step), as officially.

Module names equal the official ones under ``aggregation.``: ``refine_global.layer4.{0..4}.*`` and
``refine_local.layer4.{0..4}.*``.

Tensor contract: ``features`` X (B, C_in, h, w) (C_in = channels of the stage before ``stage``), ``maps``
(B, K, h, w) >= 0 or ``None`` (then only ``global``) -> descriptors ordered ``{global, local1, .., localK}``,
each (B, C_stage).
"""

from __future__ import annotations

import attrs
from torch import Tensor, nn

from hashkit.errors import ContractError
from hashkit.interfaces import (
    Aggregation,
    AggregationInput,
    AggregationOutput,
    BuildContext,
    ComponentRef,
    FeatureSpec,
    nested,
)


@attrs.frozen
class RefineBranchesConfig:
    #: the backbone stage copied per branch (one the backbone can build copies of)
    stage: str = "layer4"
    #: the channel interaction inserted into each stage copy (SEMICON: icon); none by default
    interaction: ComponentRef | None = nested("channel_interaction")
    #: stage block indices after which ``interaction`` is inserted (official: 1 and 2)
    interaction_after: tuple[int, ...] = (1, 2)


class RefineBranch(nn.Module):
    """A stage copy (held under the stage's name) followed by global average pooling: (B,C,h,w) -> (B,C')."""

    def __init__(self, stage_name: str, blocks: nn.Sequential):
        super().__init__()
        self.stage_name = stage_name
        self.add_module(stage_name, blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self._modules[self.stage_name](x).mean(dim=(2, 3))


class RefineBranches(Aggregation):
    def __init__(self, cfg: RefineBranchesConfig, ctx: BuildContext):
        super().__init__()
        stages = ctx.stage_builder
        if stages is None:
            raise ContractError("refine_branches needs a backbone that builds stage copies (ctx.stage_builder)")
        spec = stages.spec(cfg.stage, "refine_branches")
        before = stages.input_spec(cfg.stage)
        if ctx.in_spec is not None and before is not None and before.channels != ctx.in_spec.channels:
            raise ContractError(
                f"refine_branches: stage {cfg.stage!r} takes {before.channels} channels but receives "
                f"{ctx.in_spec.channels}"
            )
        if cfg.interaction is not None and not cfg.interaction_after:
            raise ContractError("refine_branches: 'interaction' is set but 'interaction_after' is empty, so it "
                                "would never be inserted")
        self.cfg = cfg
        self.num_local = ctx.num_maps
        self.refine_global = RefineBranch(cfg.stage, self._stage_copy(ctx, spec.channels))
        if self.num_local:
            self.refine_local = RefineBranch(cfg.stage, self._stage_copy(ctx, spec.channels))
        self.descriptor_dims = {"global": spec.channels, **{f"local{k + 1}": spec.channels
                                                            for k in range(self.num_local)}}

    def _stage_copy(self, ctx: BuildContext, channels: int) -> nn.Sequential:
        blocks = list(ctx.stage_builder.build(self.cfg.stage))
        bad = [i for i in self.cfg.interaction_after if not 0 <= i < len(blocks)]
        if bad:
            raise ContractError(f"refine_branches: interaction_after {bad} is outside stage {self.cfg.stage!r} "
                                f"({len(blocks)} blocks)")
        if self.cfg.interaction is None:
            return nn.Sequential(*blocks)
        layers: list[nn.Module] = []
        for i, block in enumerate(blocks):
            layers.append(block)
            if i in self.cfg.interaction_after:
                layers.append(ctx.build(self.cfg.interaction, in_spec=FeatureSpec(channels)))
        return nn.Sequential(*layers)

    def forward(self, inp: AggregationInput) -> AggregationOutput:
        x = inp.features
        descriptors = {"global": self.refine_global(x)}
        if self.num_local:
            if inp.maps is None or inp.maps.shape[1] != self.num_local:
                got = None if inp.maps is None else inp.maps.shape[1]
                raise ContractError(f"refine_branches was built for {self.num_local} attention maps, received {got}")
            for k in range(self.num_local):
                descriptors[f"local{k + 1}"] = self.refine_local(x * inp.maps[:, k : k + 1])
        return AggregationOutput(descriptors=descriptors)


def build_refine_branches(cfg: RefineBranchesConfig, ctx: BuildContext) -> RefineBranches:
    """SEMICON refine branches: a global stage copy and one shared local copy per attention map, GAP each."""
    return RefineBranches(cfg, ctx)


def _example():
    import torch

    from hashkit.assemble import make_component
    from hashkit.testing import ComponentExample, expect

    backbone = make_component("backbone", "tiny_cnn", {"width": 4, "blocks": 3, "until": "stage3"})
    spec = FeatureSpec(16, 8)
    g = torch.Generator().manual_seed(0)
    ctx = BuildContext(in_spec=spec, stages={"stage3": spec}, num_maps=3, stage_builder=backbone.stage_builder(),
                       code_length=12)
    inputs = (AggregationInput(features=torch.randn(2, 16, 8, 8, generator=g),
                               maps=torch.rand(2, 3, 8, 8, generator=g)),)

    def check(comp, out):
        names = list(out.descriptors)
        expect(names == ["global", "local1", "local2", "local3"], f"descriptors {names}")
        icons = sum(type(m).__name__ == "ICON" for m in comp.refine_local.modules())
        expect(icons == 2, f"the local stage copy holds {icons} ICONs, expected one per insertion point (2)")

    return ComponentExample(config={"stage": "stage4", "interaction": {"name": "icon"}}, ctx=ctx, inputs=inputs,
                            check=check)


def components(register):
    register("aggregation", "refine_branches", build_refine_branches, config=RefineBranchesConfig, example=_example)
