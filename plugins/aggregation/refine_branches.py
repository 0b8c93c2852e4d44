"""``refine_branches``: SEMICON's global and local refine branches (semicon.md §2–3).

Two fresh copies of a later backbone stage (``stage``, default ``layer4``) are built with
``ctx.backbone.build_stage``; the recipe's channel interaction (``ctx.channel_interaction``, ICON for
SEMICON) is inserted after the stage blocks listed in ``interaction_after`` (official: after blocks 1 and 2,
giving ``[B0, B1, ICON, B2, ICON]``, one weight set per insertion and per copy).

- ``refine_global``: the stage copy on X, then global average pooling -> descriptor ``global``;
- ``refine_local``: ONE shared copy applied to ``X * A_k`` for each attention map k (broadcast over
  channels), GAP each -> descriptors ``local1 .. localK``. In train mode every pass computes its own
  BatchNorm batch statistics and updates the shared running statistics (K updates per step), as officially.

Options for the same skeleton in A2-Net and ExchNet (aassxun/DSH_Analysis @ 44271bc, ludics/fghash @ 077160f):

- ``order = "local_first"`` orders the descriptors ``{local1 .. localK, global}`` (their concatenation
  ``all_f = [f_1 .. f_K, f_G]`` feeds one projection), ``"global_first"`` (SEMICON) ``{global, local1 ..}``;
- ``local_pass = "stacked"`` runs the shared local copy ONCE on the K weighted maps stacked along the batch
  (B*K images: BatchNorm batch statistics over all parts together, one running-statistics update per step,
  as A2-Net and ExchNet do), ``"per_map"`` (SEMICON) once per map.

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
from einops import rearrange
from torch import Tensor, nn

from hashkit.errors import ContractError
from hashkit.interfaces import Aggregation, AggregationInput, AggregationOutput, BuildContext


@attrs.frozen
class RefineBranchesConfig:
    #: the backbone stage copied per branch (must be available through backbone.build_stage)
    stage: str = "layer4"
    #: stage block indices after which the recipe's channel interaction is inserted (official: 1 and 2)
    interaction_after: tuple[int, ...] = (1, 2)
    #: descriptor order: "global_first" (SEMICON) or "local_first" (A2-Net, ExchNet: all_f = [f_1..f_K, f_G])
    order: Literal["global_first", "local_first"] = "global_first"
    #: the shared local copy runs once per map ("per_map", SEMICON) or once on all maps stacked ("stacked")
    local_pass: Literal["per_map", "stacked"] = "per_map"


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
    can build it and that its input matches the features the aggregation receives."""
    backbone = ctx.backbone
    if backbone is None or not hasattr(backbone, "build_stage"):
        raise ContractError(f"{owner} needs the backbone (ctx.backbone) to build stage copies")
    specs = backbone.all_stage_specs()
    if stage not in specs:
        raise ContractError(f"{owner}: backbone has no stage {stage!r}; stages are {list(specs)}")
    names = list(specs)
    position = names.index(stage)
    if ctx.in_spec is not None and position > 0 and specs[names[position - 1]].channels != ctx.in_spec.channels:
        raise ContractError(
            f"{owner}: stage {stage!r} takes {specs[names[position - 1]].channels} channels "
            f"(the output of {names[position - 1]!r}) but receives {ctx.in_spec.channels}"
        )
    return specs[stage].channels


def with_interaction(blocks: list[nn.Module], after: tuple[int, ...], ctx: BuildContext, channels: int,
                     owner: str, first: int = 0) -> nn.Sequential:
    """``blocks`` (stage block indices ``first``, ``first + 1``, ...) with the recipe's channel interaction
    inserted after the indices in ``after``; an index outside them is an error naming ``owner``."""
    bad = [i for i in after if not first <= i < first + len(blocks)]
    if bad:
        raise ContractError(f"{owner}: interaction_after {bad} is outside the stage blocks "
                            f"{first}..{first + len(blocks) - 1}")
    layers: list[nn.Module] = []
    for i, block in enumerate(blocks, start=first):
        layers.append(block)
        if i in after and ctx.channel_interaction is not None:
            layers.append(ctx.channel_interaction(channels))
    return nn.Sequential(*layers)


class RefineBranches(Aggregation):
    def __init__(self, cfg: RefineBranchesConfig, ctx: BuildContext):
        super().__init__()
        channels = stage_channels(ctx, cfg.stage, "refine_branches")
        self.cfg = cfg
        self.num_local = ctx.num_maps
        self.refine_global = RefineBranch(cfg.stage, self._stage_copy(channels, ctx))
        if self.num_local:
            self.refine_local = RefineBranch(cfg.stage, self._stage_copy(channels, ctx))
        local = {f"local{k + 1}": channels for k in range(self.num_local)}
        self.descriptor_dims = {**local, "global": channels} if cfg.order == "local_first" else {"global": channels, **local}

    def _stage_copy(self, channels: int, ctx: BuildContext) -> nn.Sequential:
        blocks = list(ctx.backbone.build_stage(self.cfg.stage))
        return with_interaction(blocks, self.cfg.interaction_after, ctx, channels, "refine_branches")

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
        """Descriptors in the configured order from f_G (B, C) and the pooled local features (B, K, C)."""
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


def stage_copy_example(num_maps: int, interaction: tuple[str, dict] | None = None, context: dict | None = None,
                       check=None):
    """A conformance example for aggregations that copy a backbone stage: tiny_cnn (width 4, 3 blocks) up to
    stage3 (16 channels, 8x8 maps), ``num_maps`` random maps, stage4 copies, an optional channel interaction
    ``(name, params)`` and batch ``context``."""
    import torch

    from hashkit.assemble import make_component
    from hashkit.interfaces import FeatureSpec
    from hashkit.testing import ComponentExample

    backbone = make_component("backbone", "tiny_cnn", {"width": 4, "blocks": 3, "until": "stage3"})
    spec = FeatureSpec(16, 8)
    def factory(channels: int):
        return make_component("channel_interaction", interaction[0], interaction[1],
                              BuildContext(in_spec=FeatureSpec(channels)))

    g = torch.Generator().manual_seed(0)
    ctx = BuildContext(in_spec=spec, stages={"stage3": spec}, num_maps=num_maps, backbone=backbone,
                       channel_interaction=factory if interaction is not None else None, code_length=12)
    inputs = (AggregationInput(features=torch.randn(2, 16, 8, 8, generator=g),
                               maps=torch.rand(2, num_maps, 8, 8, generator=g), context=dict(context or {})),)
    return ComponentExample(config={"stage": "stage4"}, ctx=ctx, inputs=inputs, check=check)


def _example():
    def check(comp, out):
        assert list(out.descriptors) == ["global", "local1", "local2", "local3"]
        assert sum(isinstance(m, nn.Module) and type(m).__name__ == "ICON" for m in comp.refine_local.modules()) == 2

    return stage_copy_example(3, ("icon", {}), check=check)


def components(register):
    register("aggregation", "refine_branches", build_refine_branches, config=RefineBranchesConfig, example=_example)
