"""``stage_exchange``: DAHNet's local path (shared stem, neighbour-stage exchange, shared refine) and global branch.

As aassxun/DSH_Analysis @ 44271bc (``models/DAHNET.py``, ``DAHNET.forward``) computes it. Two fresh copies of a
later backbone stage (``stage``, default ``layer4``; every block pretrained when the backbone has weights):

- ``refine_global``: the whole stage copy on X, then GAP -> descriptor ``global``;
- the second copy is split: its first block is the shared ``local_stem`` (the reference's ``trans``, ImageNet
  layer4.0, stride 2), the remaining blocks form the shared ``refine_local`` with the nested channel
  interaction ``interaction`` (DAHNet: ``interaction = {name = "cfm"}``) inserted after the stage blocks listed
  in ``interaction_after`` (official: after block 1, giving ``[B1, CFM, B2]``).

For the K stage maps W_k of the attention (``fesm``: E_k = X * W_k):

1. X_k = local_stem(X * W_k), one pass per stage (BatchNorm running statistics update K times per step);
2. MCM between neighbouring stages j, j+1: c(p) = cos(X_{j+1}(:, p), X_j(:, p)) over channels (eps 1e-8),
   s = softmax over the positions of c, t = softmax over the positions of (1 - s); stage j receives X_{j+1} * t,
   stage j+1 receives X_j * s. Y_k = X_k + (sum of what it receives) / (number of neighbours), i.e. for K = 3:
   Y_1 = X_1 + X_2 t12, Y_2 = X_2 + (X_1 s12 + X_3 t23) / 2, Y_3 = X_3 + X_2 s23 (the reference's assignment;
   its variable names are swapped, the values are these);
3. descriptor ``local<k>`` = GAP(refine_local(Y_k)), one pass per stage.

s and t are softmaxes over h'w' positions, so each is about 1/h'w' and the exchange adds about 2 % of a
neighbour at 7x7 (reference). ``mcm_scale = "positions"`` multiplies s and t by h'w' so they average 1.

Names (reference -> here, under ``aggregation.``): ``refine_global.layer4.*`` -> ``refine_global.<stage>.*``,
``trans.layer4.0.*`` -> ``local_stem.*``, ``refine_local.layer4.<j>.*`` -> ``refine_local.<stage>.<j>.*``.

Tensor contract: ``features`` X (B, C_in, h, w), ``maps`` (B, K, h, w) >= 0 -> descriptors ``{global, local1 ..
localK}``, each (B, C_stage).
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch.nn.functional as F
from torch import Tensor

from hashkit.errors import ContractError
from hashkit.interfaces import Aggregation, AggregationInput, AggregationOutput, BuildContext, ComponentRef, nested
from hashkit_plugins.aggregation.refine_branches import (RefineBranch, stage_channels, stage_copy_example,
                                                        with_interaction)


@attrs.frozen
class StageExchangeConfig:
    #: the backbone stage copied (global branch; stem + local refine)
    stage: str = "layer4"
    #: the channel interaction inserted into the local refine (DAHNet: cfm); none by default
    interaction: ComponentRef | None = nested("channel_interaction")
    #: stage block indices after which ``interaction`` is inserted in the local refine (official: 1)
    interaction_after: tuple[int, ...] = (1,)
    #: MCM weights as softmaxes over the positions ("softmax", reference) or multiplied by h'w' ("positions")
    mcm_scale: Literal["softmax", "positions"] = "softmax"


def mcm_weights(p: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
    """(s, t), each (B, 1, h, w): s = softmax_positions(cos(p, q) over channels), t = softmax_positions(1 - s)."""
    b, _, h, w = p.shape
    s = F.cosine_similarity(p, q, dim=1).reshape(b, 1, h * w).softmax(dim=2)
    t = (1.0 - s).softmax(dim=2)
    return s.reshape(b, 1, h, w), t.reshape(b, 1, h, w)


def stage_exchange(stages: list[Tensor], scale: float = 1.0) -> list[Tensor]:
    """MCM between neighbouring stage maps (each (B, C, h, w)); see the module docstring."""
    received: list[list[Tensor]] = [[] for _ in stages]
    for j in range(len(stages) - 1):
        s, t = mcm_weights(stages[j + 1], stages[j])
        received[j].append(stages[j + 1] * (t * scale))
        received[j + 1].append(stages[j] * (s * scale))
    out = []
    for x, got in zip(stages, received):
        if not got:
            out.append(x)
        elif len(got) == 1:
            out.append(x + got[0])
        else:
            out.append(x + sum(got[1:], got[0]) / len(got))
    return out


class StageExchange(Aggregation):
    def __init__(self, cfg: StageExchangeConfig, ctx: BuildContext):
        super().__init__()
        channels = stage_channels(ctx, cfg.stage, "stage_exchange")
        if ctx.num_maps < 1:
            raise ContractError("stage_exchange needs stage maps from the attention (e.g. fesm)")
        self.cfg = cfg
        self.num_local = ctx.num_maps
        self.refine_global = RefineBranch(cfg.stage, ctx.stage_builder.build(cfg.stage))
        blocks = list(ctx.stage_builder.build(cfg.stage))
        if len(blocks) < 2:
            raise ContractError(f"stage_exchange: stage {cfg.stage!r} has {len(blocks)} block(s); the stem takes the "
                                f"first and the local refine needs at least one more")
        self.local_stem = blocks[0]
        self.refine_local = RefineBranch(cfg.stage, with_interaction(blocks[1:], cfg.interaction, cfg.interaction_after,
                                                                     ctx, channels, "stage_exchange", first=1))
        self.descriptor_dims = {"global": channels, **{f"local{k + 1}": channels for k in range(self.num_local)}}

    def forward(self, inp: AggregationInput) -> AggregationOutput:
        x, maps = inp.features, inp.maps
        if maps is None or maps.shape[1] != self.num_local:
            got = None if maps is None else maps.shape[1]
            raise ContractError(f"stage_exchange was built for {self.num_local} stage maps, received {got}")
        stems = [self.local_stem(x * maps[:, k : k + 1]) for k in range(self.num_local)]
        scale = float(stems[0].shape[2] * stems[0].shape[3]) if self.cfg.mcm_scale == "positions" else 1.0
        exchanged = stage_exchange(stems, scale)
        descriptors = {"global": self.refine_global(x)}
        for k, y in enumerate(exchanged):
            descriptors[f"local{k + 1}"] = self.refine_local(y)
        return AggregationOutput(descriptors=descriptors)


def build_stage_exchange(cfg: StageExchangeConfig, ctx: BuildContext) -> StageExchange:
    """DAHNet: global stage copy; shared stem per stage map, MCM exchange between neighbours, shared local refine."""
    return StageExchange(cfg, ctx)


def _example():
    from hashkit.testing import expect

    def check(comp, out):
        names = list(out.descriptors)
        expect(names == ["global", "local1", "local2", "local3"], f"descriptors {names}")
        blocks = [type(m).__name__ for m in comp.refine_local.stage4]
        expect(blocks == ["_Residual", "CFM", "_Residual"], f"local stage copy {blocks}, expected the CFM after block 0")

    return stage_copy_example(3, {"interaction": {"name": "cfm", "size": "dynamic"}}, check=check)


def components(register):
    register("aggregation", "stage_exchange", build_stage_exchange, config=StageExchangeConfig, example=_example)
