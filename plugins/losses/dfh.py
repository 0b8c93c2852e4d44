"""``dfh``: DFH, push for quantization: deep Fisher hashing (Li, Pei, Zha, van Gemert, BMVC 2019), as
DeepHash-pytorch trains it.

Buffers: the memory bank ``U (n, L)`` (raw outputs), ``Y (n, C)``; relaxed class centres ``V (L, C)`` (zero at
the start) and their signs ``centers = sign V``. Per batch, with ``u`` the raw output:

1. ``b = sign(μ · y centersᵀ + u)`` (b, L), with the centres of the *previous* batch (μ = 0.1);
2. ``center_steps`` plain gradient steps on V (lr ``center_lr``, × 0.1 at each step index in
   ``center_lr_decay_at``, checked before the step) on
   ``mean(V yᵀ − bᵀ)² + inter · mean(VᵀV − L(2I − 11ᵀ))² + center_quantization · mean(V − sign V)²``,
   then ``centers ← sign V`` (the gradient is the closed form of that objective);
3. the network loss, θ = clamp(½ u Uᵀ, −100, 50), margin m::

       loss = mean[(1 − s) log(1 + e^{m + θ}) + s log(1 + e^{m − θ})]  +  η · mean (b − u)²

m = 3, η = 0.5, inter = center_quantization = 1 (the reference's ``vul``, ``nta``), 200 steps at 0.03
(0.003 from step 149, 0.0003 from step 179). Parts: ``metric``, ``quantization``.
Reference: swuxyj/DeepHash-pytorch @ ab14068 ``DFH.py`` (``DFHLoss``, ``Center_gradient``).
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor

from hashkit.interfaces import BuildContext, LossInputs, LossResult
from hashkit_plugins.losses._memory_bank import BankConfig, BankLoss
from hashkit_plugins.losses._pairwise import share_label


@attrs.frozen
class DFHConfig(BankConfig):
    #: weight μ of the class centres in the binary codes b
    mu: float = 0.1
    #: margin m of the metric term
    margin: float = 3.0
    #: weight η of the quantisation term mean (b - u)^2
    eta: float = attrs.field(default=0.5, validator=attrs.validators.ge(0.0))
    #: weight of the inter-centre term in the centre update (the reference's "vul")
    inter: float = attrs.field(default=1.0, validator=attrs.validators.ge(0.0))
    #: weight of the centres' quantisation term in the centre update (the reference's "nta")
    center_quantization: float = attrs.field(default=1.0, validator=attrs.validators.ge(0.0))
    #: gradient steps on V per batch
    center_steps: int = attrs.field(default=200, validator=attrs.validators.ge(0))
    #: learning rate of those steps
    center_lr: float = attrs.field(default=0.03, validator=attrs.validators.gt(0.0))
    #: step indices at which the centre learning rate is multiplied by 0.1 (before the step)
    center_lr_decay_at: tuple[int, ...] = (149, 179)


class DFH(BankLoss):
    name = "dfh"

    def __init__(self, cfg: DFHConfig, ctx: BuildContext):
        super().__init__(cfg, ctx)
        self.register_buffer("V", torch.zeros(self.code_length, self.num_classes))
        self.register_buffer("centers", torch.zeros(self.code_length, self.num_classes))
        c = self.num_classes
        self.register_buffer("inter_target", self.code_length * (2 * torch.eye(c) - torch.ones(c, c)))

    @torch.no_grad()
    def update_centers(self, y: Tensor, b: Tensor) -> None:
        """``center_steps`` gradient steps on V for the batch's labels ``y (b, C)`` and codes ``b (b, L)``."""
        cfg = self.cfg
        V = self.V.to(y.dtype).clone()
        target = self.inter_target.to(y.dtype)
        lr = cfg.center_lr
        for step in range(cfg.center_steps):
            intra = V @ y.t() - b.t()
            gram = V.t() @ V - target
            grad = (2.0 / intra.numel()) * intra @ y \
                + cfg.inter * (4.0 / gram.numel()) * V @ gram \
                + cfg.center_quantization * (2.0 / V.numel()) * (V - torch.sign(V))
            if step in cfg.center_lr_decay_at:
                lr *= 0.1
            V = V - lr * grad
        self.V.copy_(V)
        self.centers.copy_(torch.sign(V))

    def forward(self, inputs: LossInputs) -> LossResult:
        u, y = self.read(inputs)
        codes, labels = self.pair_with(inputs, u, y)
        b = torch.sign(self.cfg.mu * y @ self.centers.to(u.dtype).t() + u).detach()
        self.update_centers(y.detach(), b)
        s = share_label(y, labels)
        theta = (0.5 * (u @ codes.t())).clamp(min=-100, max=50)
        m = self.cfg.margin
        metric = ((1 - s) * F.softplus(m + theta) + s * F.softplus(m - theta)).mean()
        quantization = (b - u).pow(2).mean()
        return LossResult(value=metric + self.cfg.eta * quantization,
                          parts={"metric": metric, "quantization": quantization})


def build_dfh(cfg: DFHConfig, ctx: BuildContext) -> DFH:
    """DFH: margin pairwise likelihood against a bank, quantisation to centre-guided codes, centres by inner GD."""
    return DFH(cfg, ctx)


def components(register):
    from hashkit_plugins.losses._examples import bank_example

    register("loss", "dfh", build_dfh, config=DFHConfig, example=bank_example)
