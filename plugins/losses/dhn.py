"""``dhn``: DHN, deep hashing network (Zhu, Long, Wang, Cao, AAAI 2016), as DeepHash-pytorch trains it.

DPSH's bank likelihood with a log-cosh quantisation (``u`` the raw output, bank ``U``, ``Y`` as ``dpsh``)::

    loss = mean_{i,j} [log(1 + e^θ_ij) − s_ij θ_ij]  +  α · mean_{i,k} log cosh(|u_ik| − 1),   θ = ½ u Uᵀ

α = 0.1 (log cosh computed stably). Parts: ``likelihood``, ``quantization``.
Reference: swuxyj/DeepHash-pytorch @ ab14068 ``DHN.py`` (``DHNLoss``).
"""

from __future__ import annotations

import math

import attrs
import torch.nn.functional as F
from torch import Tensor

from hashkit.interfaces import BuildContext
from hashkit_plugins.losses._memory_bank import BankConfig
from hashkit_plugins.losses.dpsh import DPSH


@attrs.frozen
class DHNConfig(BankConfig):
    #: weight α of the quantisation term mean log cosh(|u| - 1)
    alpha: float = attrs.field(default=0.1, validator=attrs.validators.ge(0.0))


def log_cosh(x: Tensor) -> Tensor:
    """``log cosh x`` without overflow: ``|x| + log(1 + e^{−2|x|}) − log 2``."""
    return x.abs() + F.softplus(-2 * x.abs()) - math.log(2.0)


class DHN(DPSH):
    name = "dhn"

    def quantization(self, u: Tensor) -> Tensor:
        return log_cosh(u.abs() - 1).mean()


def build_dhn(cfg: DHNConfig, ctx: BuildContext) -> DHN:
    """DHN: DPSH's bank likelihood plus log-cosh quantisation."""
    return DHN(cfg, ctx)


def components(register):
    from hashkit_plugins.losses._examples import bank_example

    register("loss", "dhn", build_dhn, config=DHNConfig, example=bank_example)
