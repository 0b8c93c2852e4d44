"""``fesm``: DAHNet's stripe-based feature enhancement and suppression, applied in cumulative stages.

As aassxun/DSH_Analysis @ 44271bc (``models/DAHNET.py``, class ``FESM``) computes it, with k = ``stripes``
(2) stripes per axis. One FESM call on F (B, C, H, W):

- split F into k horizontal stripes (rows) and k vertical stripes (columns); each stripe passes through its
  axis' branch ``Conv1x1 C -> 1 (bias) + BN(1) + ReLU`` and is average-pooled to one score (``stripconv``
  for horizontal stripes, ``stripconv_h`` for vertical ones; in train mode every stripe is normalised with
  its own batch statistics and updates the BN running statistics, as in the reference);
- a = softmax over the horizontal scores, b = softmax over the vertical scores (per image);
  A(y, x) = a[stripe(y)] * b[stripe(x)], a block map in (0, 1) summing to 1 over the k*k blocks;
- enhanced E = F * (1 + ``boost`` * A) (boost 0.5);
- suppression mask (per image, no gradient) M = ``suppress`` (0.5) where A >= ``threshold`` (0.95) * max A,
  else 1; suppressed S = F * M.

Stages (shared weights): (E_1, S_1) = FESM(X), (E_2, S_2) = FESM(S_1), (E_3, .) = FESM(S_2). Because every
step is a per-position scaling of X, E_k = X * W_k with W_k = M_1 ... M_{k-1} * (1 + boost * A_k): this
component returns the weights W_k as its maps (named ``stage1..``); the aggregation forms X * W_k. Gradients
are those of the reference (A_k depends on X through the stripe convs of the suppressed input).

``shape``: ``"official"`` accepts only square maps whose side is a multiple of k (the reference splits both
axes with the row stripe width and fails or misbehaves otherwise) and raises a clear error for others;
``"general"`` splits each axis into k near-equal stripes of its own size (any H, W >= k).

Init (reference): convs ``kaiming_normal_(fan_out, relu)`` with fan_out = 1, i.e. std sqrt(2); conv biases
PyTorch's default; BN weight 1, bias 0.

Reference names: ``attention.stripconv.{0,1}.*`` and ``attention.stripconv_h.{0,1}.*`` (same here).

Tensor contract: input (B, C, H, W) -> ``AttentionOutput(features = input unchanged, maps = [W_1 .. W_K]
(B, K, H, W) >= 0)``, K = ``stages``.
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
from torch import Tensor, nn

from hashkit.errors import ContractError
from hashkit.interfaces import Attention, AttentionOutput, BuildContext
from hashkit_plugins.backbones.resnet import init_weights


@attrs.frozen
class FESMConfig:
    #: cumulative stages (DAHNet: 3, one local branch each)
    stages: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    #: stripes per axis (k)
    stripes: int = attrs.field(default=2, validator=attrs.validators.ge(1))
    #: enhancement E = F * (1 + boost * A)
    boost: float = 0.5
    #: the factor applied to the suppressed blocks
    suppress: float = attrs.field(default=0.5, validator=attrs.validators.ge(0.0))
    #: blocks with A >= threshold * max A are suppressed
    threshold: float = attrs.field(default=0.95, validator=[attrs.validators.gt(0.0), attrs.validators.le(1.0)])
    #: "official": square maps with a side divisible by stripes only; "general": any H, W >= stripes
    shape: Literal["official", "general"] = "official"


def _branch(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels, 1, 1), nn.BatchNorm2d(1), nn.ReLU())


class FESM(Attention):
    def __init__(self, cfg: FESMConfig, channels: int):
        super().__init__()
        self.cfg = cfg
        self.in_channels = self.out_channels = channels
        self.num_maps = cfg.stages
        self.map_names = tuple(f"stage{k + 1}" for k in range(cfg.stages))
        self.stripconv = _branch(channels)
        self.stripconv_h = _branch(channels)
        init_weights(self)

    def _sizes(self, h: int, w: int) -> tuple[list[int], list[int]]:
        k = self.cfg.stripes
        if self.cfg.shape == "official":
            if h != w or h % k:
                raise ContractError(f"fesm: shape = \"official\" needs a square map whose side is a multiple of "
                                    f"{k} (the reference splits both axes by the row stripe width), found {h}x{w}; "
                                    f"set shape = \"general\"")
            return [h // k] * k, [w // k] * k
        if h < k or w < k:
            raise ContractError(f"fesm: a {h}x{w} map cannot be split into {k} stripes per axis")
        return [len(c) for c in torch.arange(h).tensor_split(k)], [len(c) for c in torch.arange(w).tensor_split(k)]

    def block_map(self, f: Tensor) -> Tensor:
        """A (B, 1, H, W): the product of the row-stripe and column-stripe softmax weights of ``f``."""
        rows, cols = self._sizes(*f.shape[2:])
        r = torch.cat([self.stripconv(s).mean(dim=(2, 3), keepdim=True) for s in f.split(rows, dim=2)], dim=2)
        c = torch.cat([self.stripconv_h(s).mean(dim=(2, 3), keepdim=True) for s in f.split(cols, dim=3)], dim=3)
        index_r = torch.repeat_interleave(torch.arange(len(rows), device=f.device), torch.tensor(rows, device=f.device))
        index_c = torch.repeat_interleave(torch.arange(len(cols), device=f.device), torch.tensor(cols, device=f.device))
        return r.softmax(dim=2)[:, :, index_r] * c.softmax(dim=3)[:, :, :, index_c]

    def suppression_mask(self, a: Tensor) -> Tensor:
        """M (B, 1, H, W), no gradient: ``suppress`` where A >= threshold * (per-image max of A), else 1."""
        with torch.no_grad():
            peak = a.amax(dim=(1, 2, 3), keepdim=True)
            return torch.where(a < peak * self.cfg.threshold, torch.ones_like(a), torch.full_like(a, self.cfg.suppress))

    def forward(self, x: Tensor) -> AttentionOutput:
        cfg = self.cfg
        kept = torch.ones_like(x[:, :1])
        maps = []
        for k in range(cfg.stages):
            a = self.block_map(x * kept if k else x)
            maps.append(kept * (1 + cfg.boost * a))
            if k + 1 < cfg.stages:
                kept = kept * self.suppression_mask(a)
        return AttentionOutput(features=x, maps=torch.cat(maps, dim=1))


def build_fesm(cfg: FESMConfig, ctx: BuildContext) -> FESM:
    """DAHNet's stripe enhancement/suppression in cumulative stages; maps are the per-stage weights W_k."""
    return FESM(cfg, ctx.input_channels("fesm"))


def components(register):
    register("attention", "fesm", build_fesm, config=FESMConfig)
