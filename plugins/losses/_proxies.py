"""Private pieces shared by the proxy losses (``proxy_anchor``, ``hhf``): proxy initialisation, the
Proxy-Anchor per-proxy aggregation, and the proxy-uniformity regulariser of the FDH-MFE design.

The proxies live as the parameter ``proxies`` ``(C, L)`` directly on each loss module, so a recipe's
``[[optimizer.param_groups]] match = "proxies"`` gives them their own learning-rate multiplier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext
from hashkit_plugins.losses._code_input import at_least_float32


def make_proxies(num_classes: int, dim: int) -> nn.Parameter:
    """``(num_classes, dim)`` float32 proxies, Kaiming-normal (fan_out) as in Proxy-Anchor and HHF."""
    p = torch.empty(num_classes, dim)
    nn.init.kaiming_normal_(p, mode="fan_out")
    return nn.Parameter(p)


def proxy_sizes(ctx: BuildContext, what: str) -> tuple[int, int]:
    if not ctx.code_length or not ctx.num_classes:
        raise ContractError(f"the {what} loss needs the code length and the number of classes (one proxy per class)")
    return ctx.num_classes, ctx.code_length


def proxy_cosines(x: Tensor, proxies: Tensor) -> Tensor:
    """``(B, C)`` cosine similarity of each row of ``x (B, D)`` with each proxy ``(C, D)``."""
    x = at_least_float32(x)
    return F.normalize(x, dim=1) @ F.normalize(proxies.to(x.dtype), dim=1).T


def anchor_aggregate(pos: Tensor, neg: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Proxy-Anchor aggregation of per-(sample, proxy) terms ``pos``/``neg`` ``(B, C)``.

    ``pos_term = (1/|P+|) Σ_{p∈P+} log(1 + Σ_{x∈X_p+} pos)``, ``neg_term = (1/|P|) Σ_p log(1 + Σ_{x∈X_p-} neg)``;
    ``labels (B, C)`` multi-hot, ``P+`` the proxies with a positive sample in the batch.
    """
    is_pos = labels > 0
    pos_sum = torch.where(is_pos, pos, torch.zeros_like(pos)).sum(dim=0)
    neg_sum = torch.where(is_pos, torch.zeros_like(neg), neg).sum(dim=0)
    with_pos = is_pos.any(dim=0)
    pos_term = torch.log1p(pos_sum)[with_pos].sum() / with_pos.sum().clamp_min(1)
    neg_term = torch.log1p(neg_sum).sum() / labels.shape[1]
    return pos_term, neg_term


def proxy_uniformity(proxies: Tensor, t: float = 2.0) -> Tensor:
    """``log((1/(C(C-1))) Σ_{i≠j} exp(-t ||p̂_i - p̂_j||²))`` on L2-normalised proxies (lower = more uniform)."""
    p = F.normalize(proxies.float(), dim=1)
    c = p.shape[0]
    sq = (2 - 2 * p @ p.T).clamp_min(0)
    off = ~torch.eye(c, dtype=torch.bool, device=p.device)
    return torch.logsumexp(-t * sq[off], dim=0) - torch.log(torch.tensor(float(c * (c - 1))))
