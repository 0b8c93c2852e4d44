"""``exchange_branches``: ExchNet's refine branches with local feature alignment by exchange.

The ``refine_branches`` skeleton as ExchNet builds it (ludics/fghash @ 077160f ``models/exchnet.py``; the same
file in aassxun/DSH_Analysis @ 44271bc): a global stage copy on X, ONE shared local stage copy run once on the K
weighted maps X * A_k stacked along the batch, GAP each; descriptors ordered ``{local1 .. localK, global}`` so
their concatenation is the reference's ``all_f = [f_1 .. f_K, f_G]``. On top:

- **part descriptors for the attention constraints** (extras, every mode):
  ``part_spatial`` p (B, K, h'w') = softmax over the positions of the channel mean of each local output map;
  ``part_channel`` q (B, K, C) = softmax over the channels of each pooled local feature, before the exchange;
- **feature exchange** (train mode only, when the batch context holds ``anchors``, i.e. the ``adsh``
  protocol's class anchors after ``anchors_after`` rounds): each pooled local feature is replaced by its
  class anchor under an independent Bernoulli mask per (sample, part), keep probability ``keep`` (0.5):
  f_k <- mask * f_k + (1 - mask) * C[y, k]. The exchanged features are the local descriptors (so they feed the
  hash layer), ``part_features`` (B, K, C) holds them and ``part_anchors`` (B, K, C) the anchors used, for
  the ``part_alignment`` loss. Without anchors ``part_features`` holds the pooled local features.

The anchors come as class-mean rows of the whole descriptor (B, D); this component takes its local columns.

Tensor contract: ``features`` X (B, C_in, h, w), ``maps`` (B, K, h, w) >= 0 -> descriptors ``{local1 ..
localK, global}`` (B, C) each; extras as above. Names as ``refine_branches``: ``refine_global.<stage>.*``,
``refine_local.<stage>.*``.
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from hashkit.errors import ContractError
from hashkit.interfaces import AggregationInput, AggregationOutput, BuildContext
from hashkit_plugins.aggregation.refine_branches import RefineBranches, RefineBranchesConfig, stage_copy_example


@attrs.frozen
class ExchangeBranchesConfig:
    #: the backbone stage copied per branch
    stage: str = "layer4"
    #: probability that a part keeps its own feature during an exchange (the reference's Bernoulli(0.5))
    keep: float = attrs.field(default=0.5, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)])


class ExchangeBranches(RefineBranches):
    def __init__(self, cfg: ExchangeBranchesConfig, ctx: BuildContext):
        if not ctx.num_maps:
            raise ContractError("exchange_branches needs part maps from the attention (e.g. part_attention)")
        super().__init__(RefineBranchesConfig(stage=cfg.stage, interaction_after=(), order="local_first",
                                              local_pass="stacked"), ctx)
        self.keep = cfg.keep

    def _local_anchors(self, anchors: Tensor) -> Tensor:
        dims = list(self.descriptor_dims.values())
        width = dims[0]
        if anchors.shape[1] != sum(dims):
            raise ContractError(f"exchange_branches: anchors have {anchors.shape[1]} columns, the descriptor has "
                                f"{sum(dims)} (anchors must be class means of this model's descriptors)")
        return anchors[:, : self.num_local * width].reshape(anchors.shape[0], self.num_local, width)

    def forward(self, inp: AggregationInput) -> AggregationOutput:
        maps = self.local_maps(inp)
        local_f = maps.mean(dim=(3, 4))
        extras = {"part_spatial": maps.mean(dim=2).flatten(2).softmax(dim=2),
                  "part_channel": local_f.softmax(dim=2)}
        anchors = inp.context.get("anchors")
        if self.training and anchors is not None:
            part_anchors = self._local_anchors(anchors.to(local_f))
            keep = torch.bernoulli(torch.full(local_f.shape[:2] + (1,), self.keep, device=local_f.device,
                                              dtype=local_f.dtype))
            local_f = local_f * keep + part_anchors * (1 - keep)
            extras["part_anchors"] = part_anchors
        extras["part_features"] = local_f
        return AggregationOutput(descriptors=self.ordered(self.refine_global(inp.features), local_f), extras=extras)


def build_exchange_branches(cfg: ExchangeBranchesConfig, ctx: BuildContext) -> ExchangeBranches:
    """ExchNet branches: stacked shared local copy, part distributions, class-anchor exchange in training."""
    return ExchangeBranches(cfg, ctx)


def _example():
    from hashkit.testing import expect

    def check(comp, out):
        names = list(out.descriptors)
        expect(names == ["local1", "local2", "global"], f"descriptors {names}")
        shapes = tuple(out.extras["part_spatial"].shape), tuple(out.extras["part_channel"].shape)
        expect(shapes == ((2, 2, 16), (2, 2, 32)), f"part_spatial, part_channel {shapes}")

    anchors = torch.randn(2, 96, generator=torch.Generator().manual_seed(1))
    return stage_copy_example(2, context={"anchors": anchors}, check=check)


def components(register):
    register("aggregation", "exchange_branches", build_exchange_branches, config=ExchangeBranchesConfig,
             example=_example)
