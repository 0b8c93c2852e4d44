"""``hashnet``: HashNet, deep learning to hash by continuation (Cao, Long, Wang, Yu, ICCV 2017).

As the public ports train it: ``z = tanh(β u)`` of the raw output ``u``; a class-balanced pairwise
likelihood with α = 0.1::

    θ_ij = α z_iᵀ Z_j            s_ij = 1[y_iᵀ Y_j > 0]
    loss = mean_{s_ij = 1} ℓ(θ_ij, 1) + mean_{s_ij = 0} ℓ(θ_ij, 0)      (an empty group adds 0)

with ``ℓ(θ, s) = log(1 + e^θ) − sθ`` (computed stably; DeepHash-pytorch writes ``θ + log(1 + e^{−θ}) − sθ``,
equal wherever it is finite). This equals the references' weights ``|S|/|S₁|`` on similar and ``|S|/|S₀|`` on
dissimilar pairs, summed and divided by ``|S|``. No quantisation term.

- DeepHash-pytorch (``HashNet.py``, the default): pairs within the batch (``pairs = "batch"``, all b×b pairs,
  diagonal included, both factors live).
- DSH_Analysis (``hashnet.py``): pairs against a bank of ``z`` keyed by sample position, never reset
  (``pairs = "bank"``, ``key = "position"``, ``rows`` = num_samples).

Continuation: before every epoch (``begin_epoch``) ``β = sqrt(⌊epoch / step_continuation⌋ + 1)`` with
``epoch`` counted over the whole run (DeepHash-pytorch: step 20, so β runs 1 … √8 over 150 epochs;
DSH_Analysis's 40 rounds × 30 epochs with its ``2t + ⌊e/15⌋`` rule is step 15 over the run's epochs). β is the
buffer ``scale`` (saved in checkpoints). Part: ``scale``.
"""

from __future__ import annotations

import math
from typing import Literal

import attrs
import torch

from hashkit.interfaces import BuildContext, EpochStart, LossInputs, LossResult
from hashkit_plugins.losses._memory_bank import BankConfig, BankLoss
from hashkit_plugins.losses._pairwise import pair_nll, share_label


@attrs.frozen
class HashNetConfig(BankConfig):
    #: DeepHash-pytorch's batch-only form; "bank" with key = "position" is DSH_Analysis's
    pairs: Literal["bank", "batch"] = "batch"
    #: scale α of the inner product θ = α zᵀz
    alpha: float = 0.1
    #: epochs per continuation step: β = sqrt(epoch // step_continuation + 1)
    step_continuation: int = attrs.field(default=20, validator=attrs.validators.ge(1))


class HashNet(BankLoss):
    name = "hashnet"

    def __init__(self, cfg: HashNetConfig, ctx: BuildContext):
        super().__init__(cfg, ctx)
        self.register_buffer("scale", torch.tensor(1.0))

    def begin_epoch(self, at: EpochStart) -> None:
        super().begin_epoch(at)
        self.scale.fill_(math.sqrt(at.epoch // self.cfg.step_continuation + 1))

    def forward(self, inputs: LossInputs) -> LossResult:
        u, y = self.read(inputs)
        z = torch.tanh(self.scale.to(u.dtype) * u)
        codes, labels = self.pair_with(inputs, z, y)
        s = share_label(y, labels)
        nll = pair_nll(self.cfg.alpha * (z @ codes.t()), s)
        positive = s > 0
        n_pos, n_neg = positive.sum(), (~positive).sum()
        value = nll[positive].sum() / n_pos.clamp(min=1) + nll[~positive].sum() / n_neg.clamp(min=1)
        return LossResult(value=value, parts={"scale": self.scale.detach().clone()})


def build_hashnet(cfg: HashNetConfig, ctx: BuildContext) -> HashNet:
    """HashNet: class-balanced pairwise likelihood on tanh(βu) with a per-epoch continuation scale β."""
    return HashNet(cfg, ctx)


def components(register):
    from hashkit_plugins.losses._examples import bank_example

    register("loss", "hashnet", build_hashnet, config=HashNetConfig, example=bank_example)
