"""``dsh``: DSH, deep supervised hashing (Liu, Wang, Shan, Chen, CVPR 2016), as the public ports train it.

A contrastive loss on the squared distance between the batch's raw outputs ``u`` and the memory bank ``U``
(written with the batch first, see ``_memory_bank``), margin ``m = 2L``::

    D_ij = ‖u_i − U_j‖²        s_ij = 1[y_iᵀY_j > 0]
    loss = mean_{i,j} [½ s_ij D_ij + ½ (1 − s_ij) max(m − D_ij, 0)]  +  α · mean | 1 − |u| |

DeepHash-pytorch (``DSH.py``): bank of all training items, never reset, α = 0.1 (the defaults).
DSH_Analysis (``DSH.py``): bank of the current sample (``key = "position"``, ``rows`` = num_samples),
re-created each outer iteration (``reset = "round"``), α = 0.01. Parts: ``contrastive``, ``quantization``.
"""

from __future__ import annotations

import attrs

from hashkit.interfaces import BuildContext, LossInputs, LossResult
from hashkit_plugins.losses._memory_bank import BankConfig, BankLoss
from hashkit_plugins.losses._pairwise import share_label, squared_distances


@attrs.frozen
class DSHConfig(BankConfig):
    #: weight α of the quantisation term mean | 1 - |u| | (DeepHash-pytorch 0.1, DSH_Analysis 0.01)
    alpha: float = attrs.field(default=0.1, validator=attrs.validators.ge(0.0))
    #: margin on the squared distance; 0 = 2L (the references)
    margin: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))


def contrastive(u, y, codes, labels, margin: float):
    """``mean[½ s D + ½ (1 − s) max(margin − D, 0)]`` over all pairs (D the squared distance)."""
    d = squared_distances(u, codes)
    s = share_label(y, labels)
    return (0.5 * s * d + 0.5 * (1 - s) * (margin - d).clamp(min=0)).mean()


class DSH(BankLoss):
    name = "dsh"

    def forward(self, inputs: LossInputs) -> LossResult:
        u, y = self.read(inputs)
        codes, labels = self.pair_with(inputs, u, y)
        margin = self.cfg.margin or 2.0 * u.shape[1]
        loss = contrastive(u, y, codes, labels, margin)
        quantization = (1 - u.abs()).abs().mean()
        value = loss + self.cfg.alpha * quantization
        return LossResult(value=value, parts={"contrastive": loss, "quantization": quantization})


def build_dsh(cfg: DSHConfig, ctx: BuildContext) -> DSH:
    """DSH: contrastive loss (margin 2L) against a memory bank of training codes, plus L1 quantisation."""
    return DSH(cfg, ctx)


def components(register):
    from hashkit_plugins.losses._examples import bank_example

    register("loss", "dsh", build_dsh, config=DSHConfig, example=bank_example)
