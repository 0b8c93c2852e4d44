"""``proxy_anchor``: the Proxy-Anchor loss (Kim et al., CVPR 2020) on relaxed hash codes.

With ``s(x, p)`` the cosine of code ``u_x`` and proxy ``p`` (one learnable proxy per class, ``(C, L)``)::

    loss = (1/|P+|) Σ_{p∈P+} log(1 + Σ_{x∈X_p+} exp(-α (s(x,p) - δ)))
         + (1/|P|)  Σ_{p∈P}  log(1 + Σ_{x∈X_p-} exp( α (s(x,p) + δ)))
         + w_q · mean_{i,k} (|u_ik| - 1)^2                     (optional L2 quantisation, hashkit option)
         + w_u · uniformity(proxies)                            (optional, FDH-MFE design)

Inputs: ``codes (B, L)``, ``labels (B, C)`` multi-hot. The proxies are the parameter ``proxies``; give them
their own learning rate with ``[[optimizer.param_groups]] match = "proxies"`` (about 100x, Proxy-Anchor).
"""

from __future__ import annotations

import attrs
import torch

from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit_plugins.losses._proxies import (
    anchor_aggregate,
    make_proxies,
    proxy_cosines,
    proxy_sizes,
    proxy_uniformity,
)


@attrs.frozen
class ProxyAnchorConfig:
    #: scale α
    alpha: float = attrs.field(default=32.0, validator=attrs.validators.gt(0.0))
    #: margin δ
    delta: float = 0.1
    #: weight of the L2 quantisation mean (|u| - 1)^2
    quantization: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    #: weight of the proxy-uniformity regulariser (0 = off) and its temperature t
    uniformity: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    uniformity_t: float = attrs.field(default=2.0, validator=attrs.validators.gt(0.0))


class ProxyAnchorLoss(Loss):
    requires = ("codes", "labels")

    def __init__(self, cfg: ProxyAnchorConfig, num_classes: int, code_length: int):
        super().__init__()
        self.cfg = cfg
        self.proxies = make_proxies(num_classes, code_length)

    def forward(self, inputs: LossInputs) -> LossResult:
        u = inputs.codes.float()
        cos = proxy_cosines(u, self.proxies)
        a, d = self.cfg.alpha, self.cfg.delta
        pos, neg = anchor_aggregate(torch.exp(-a * (cos - d)), torch.exp(a * (cos + d)), inputs.labels)
        quant = (u.abs() - 1).pow(2).mean()
        parts = {"pos": pos, "neg": neg, "quant": quant}
        value = pos + neg + self.cfg.quantization * quant
        if self.cfg.uniformity:
            parts["uniformity"] = proxy_uniformity(self.proxies, self.cfg.uniformity_t)
            value = value + self.cfg.uniformity * parts["uniformity"]
        return LossResult(value=value, parts=parts)


def build_proxy_anchor(cfg: ProxyAnchorConfig, ctx: BuildContext) -> ProxyAnchorLoss:
    """Proxy-Anchor loss on the relaxed codes, one learnable proxy per class."""
    return ProxyAnchorLoss(cfg, *proxy_sizes(ctx, "proxy_anchor"))


def components(register):
    register("loss", "proxy_anchor", build_proxy_anchor, config=ProxyAnchorConfig)
