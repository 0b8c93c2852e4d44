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

Options for the same skeleton in A2-Net and ExchNet (aassxun/DSH_Analysis @ 44271bc, ludics/fghash @ 077160f):

- ``order = "local_first"`` orders the descriptors ``{local1 .. localK, global}`` (their concatenation
  ``all_f = [f_1 .. f_K, f_G]`` feeds one projection), ``"global_first"`` (SEMICON) ``{global, local1 ..}``;
- ``local_pass = "stacked"`` runs the shared local copy ONCE on the K weighted maps stacked along the batch
  (B*K images: BatchNorm batch statistics over all parts together, one running-statistics update per step,
  as A2-Net and ExchNet do), ``"per_map"`` (SEMICON) once per map;
- ``l2_normalize`` (A2-Net; the PyTorch port uses none, the default): ``"feature"`` L2-normalises each pooled
  feature vector f_k and f_G; ``"batch_axis"`` reproduces the MindSpore A2-Net file
  (aassxun/MindSpore_Paperwithcode @ 3ab95bd), which normalises the stacked part features (B, K, C) and f_G
  (B, C) along axis 0, i.e. each (part, channel) entry across the batch (codes then depend on the batch:
  ``eval_batch_dependent`` is true).

Module names equal the official ones under ``aggregation.``: ``refine_global.layer4.{0..4}.*`` and
``refine_local.layer4.{0..4}.*``.

Tensor contract: ``features`` X (B, C_in, h, w) (C_in = channels of the stage before ``stage``), ``maps``
(B, K, h, w) >= 0 or ``None`` (then only ``global``) -> descriptors ordered ``{global, local1, .., localK}``,
each (B, C_stage) (``order = "local_first"``: ``{local1, .., localK, global}``).
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
import torch.nn.functional as F
from einops import rearrange
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
    #: descriptor order: "global_first" (SEMICON) or "local_first" (A2-Net, ExchNet: all_f = [f_1..f_K, f_G])
    order: Literal["global_first", "local_first"] = "global_first"
    #: the shared local copy runs once per map ("per_map", SEMICON) or once on all maps stacked ("stacked")
    local_pass: Literal["per_map", "stacked"] = "per_map"
    #: L2 normalisation of the pooled features: none (SEMICON, A2-Net's PyTorch port), per "feature" vector, or
    #: along the "batch_axis" (A2-Net's MindSpore file)
    l2_normalize: Literal["none", "feature", "batch_axis"] = "none"


class RefineBranch(nn.Module):
    """A stage copy (held under the stage's name) followed by global average pooling: (B,C,h,w) -> (B,C')."""

    def __init__(self, stage_name: str, blocks: nn.Sequential):
        super().__init__()
        self.stage_name = stage_name
        self.add_module(stage_name, blocks)

    def feature_map(self, x: Tensor) -> Tensor:
        """The stage copy's output map (B, C', h', w'), before pooling."""
        return self._modules[self.stage_name](x)

    def forward(self, x: Tensor) -> Tensor:
        return self.feature_map(x).mean(dim=(2, 3))


def stage_channels(ctx: BuildContext, stage: str, owner: str) -> int:
    """Output channels of the backbone stage ``stage`` that ``owner`` copies, after checking that the backbone
    builds stage copies and that the stage's input matches the features the aggregation receives."""
    stages = ctx.stage_builder
    if stages is None:
        raise ContractError(f"{owner} needs a backbone that builds stage copies (ctx.stage_builder)")
    spec = stages.spec(stage, owner)
    before = stages.input_spec(stage)
    if ctx.in_spec is not None and before is not None and before.channels != ctx.in_spec.channels:
        raise ContractError(f"{owner}: stage {stage!r} takes {before.channels} channels but receives "
                            f"{ctx.in_spec.channels}")
    return spec.channels


def with_interaction(blocks: list[nn.Module], interaction: ComponentRef | None, after: tuple[int, ...],
                     ctx: BuildContext, channels: int, owner: str, first: int = 0) -> nn.Sequential:
    """``blocks`` (stage block indices ``first``, ``first + 1``, ...) with one fresh ``interaction`` built and
    inserted after each index in ``after``; an index outside them is an error naming ``owner``."""
    if interaction is not None and not after:
        raise ContractError(f"{owner}: 'interaction' is set but 'interaction_after' is empty, so it would never "
                            "be inserted")
    bad = [i for i in after if not first <= i < first + len(blocks)]
    if bad:
        raise ContractError(f"{owner}: interaction_after {bad} is outside the stage blocks "
                            f"{first}..{first + len(blocks) - 1}")
    layers: list[nn.Module] = []
    for i, block in enumerate(blocks, start=first):
        layers.append(block)
        if i in after and interaction is not None:
            layers.append(ctx.build(interaction, in_spec=FeatureSpec(channels)))
    return nn.Sequential(*layers)


class RefineBranches(Aggregation):
    def __init__(self, cfg: RefineBranchesConfig, ctx: BuildContext):
        super().__init__()
        channels = stage_channels(ctx, cfg.stage, "refine_branches")
        self.cfg = cfg
        self.num_local = ctx.num_maps
        self.refine_global = RefineBranch(cfg.stage, self._stage_copy(ctx, channels))
        if self.num_local:
            self.refine_local = RefineBranch(cfg.stage, self._stage_copy(ctx, channels))
        local = {f"local{k + 1}": channels for k in range(self.num_local)}
        self.descriptor_dims = {**local, "global": channels} if cfg.order == "local_first" else {"global": channels, **local}

    def _stage_copy(self, ctx: BuildContext, channels: int) -> nn.Sequential:
        blocks = list(ctx.stage_builder.build(self.cfg.stage))
        return with_interaction(blocks, self.cfg.interaction, self.cfg.interaction_after, ctx, channels,
                                "refine_branches")

    @property
    def eval_batch_dependent(self) -> bool:
        """With ``l2_normalize = "batch_axis"`` an image's descriptor depends on its batch-mates."""
        return self.cfg.l2_normalize == "batch_axis"

    def _check_maps(self, maps: Tensor | None) -> Tensor:
        if maps is None or maps.shape[1] != self.num_local:
            got = None if maps is None else maps.shape[1]
            raise ContractError(f"refine_branches was built for {self.num_local} attention maps, received {got}")
        return maps

    def _stacked(self, x: Tensor, maps: Tensor) -> Tensor:
        weighted = rearrange(x.unsqueeze(1) * maps.unsqueeze(2), "b k c h w -> (b k) c h w")
        return rearrange(self.refine_local.feature_map(weighted), "(b k) c h w -> b k c h w", k=self.num_local)

    def local_maps(self, inp: AggregationInput) -> Tensor:
        """The shared local copy's output maps (B, K, C', h', w') on ``X * A_k`` for every map k."""
        x, maps = inp.features, self._check_maps(inp.maps)
        if self.cfg.local_pass == "stacked":
            return self._stacked(x, maps)
        return torch.stack([self.refine_local.feature_map(x * maps[:, k : k + 1]) for k in range(self.num_local)], 1)

    def local_pooled(self, inp: AggregationInput) -> Tensor:
        """The pooled local features (B, K, C') (without keeping the maps of the per-map pass)."""
        x, maps = inp.features, self._check_maps(inp.maps)
        if self.cfg.local_pass == "stacked":
            return self._stacked(x, maps).mean(dim=(3, 4))
        return torch.stack([self.refine_local(x * maps[:, k : k + 1]) for k in range(self.num_local)], 1)

    def ordered(self, global_f: Tensor, local_f: Tensor | None) -> dict[str, Tensor]:
        """Descriptors in the configured order from f_G (B, C) and the pooled local features (B, K, C), after
        the configured normalisation."""
        mode = self.cfg.l2_normalize
        if mode != "none":
            dim = -1 if mode == "feature" else 0
            global_f = F.normalize(global_f, dim=dim)
            local_f = None if local_f is None else F.normalize(local_f, dim=dim)
        local = {} if local_f is None else {f"local{k + 1}": local_f[:, k] for k in range(self.num_local)}
        if self.cfg.order == "local_first":
            return {**local, "global": global_f}
        return {"global": global_f, **local}

    def forward(self, inp: AggregationInput) -> AggregationOutput:
        local_f = self.local_pooled(inp) if self.num_local else None
        return AggregationOutput(descriptors=self.ordered(self.refine_global(inp.features), local_f))


def build_refine_branches(cfg: RefineBranchesConfig, ctx: BuildContext) -> RefineBranches:
    """SEMICON refine branches: a global stage copy and one shared local copy per attention map, GAP each."""
    return RefineBranches(cfg, ctx)


def stage_copy_example(num_maps: int, config: dict | None = None, context: dict | None = None, check=None):
    """A conformance example for aggregations that copy a backbone stage: tiny_cnn (width 4, 3 blocks) up to
    stage3 (16 channels, 8x8 maps), ``num_maps`` random maps, stage4 copies, ``config`` added to
    ``{"stage": "stage4"}`` and the batch ``context``."""
    from hashkit.assemble import make_component
    from hashkit.testing import ComponentExample

    backbone = make_component("backbone", "tiny_cnn", {"width": 4, "blocks": 3, "until": "stage3"})
    spec = FeatureSpec(16, 8)
    g = torch.Generator().manual_seed(0)
    ctx = BuildContext(in_spec=spec, stages={"stage3": spec}, num_maps=num_maps,
                       stage_builder=backbone.stage_builder(), code_length=12)
    inputs = (AggregationInput(features=torch.randn(2, 16, 8, 8, generator=g),
                               maps=torch.rand(2, num_maps, 8, 8, generator=g), context=dict(context or {})),)
    return ComponentExample(config={"stage": "stage4", **(config or {})}, ctx=ctx, inputs=inputs, check=check)


def _example():
    from hashkit.testing import expect

    def check(comp, out):
        names = list(out.descriptors)
        expect(names == ["global", "local1", "local2", "local3"], f"descriptors {names}")
        icons = sum(type(m).__name__ == "ICON" for m in comp.refine_local.modules())
        expect(icons == 2, f"the local stage copy holds {icons} ICONs, expected one per insertion point (2)")

    return stage_copy_example(3, {"interaction": {"name": "icon"}}, check=check)


def components(register):
    register("aggregation", "refine_branches", build_refine_branches, config=RefineBranchesConfig, example=_example)
