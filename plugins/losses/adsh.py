"""``adsh``: the asymmetric deep supervised hashing loss in SEMICON's form (Jiang & Li,
AAAI 2018; ``models/ADSH_Loss.py`` of aassxun/SEMICON @ 885cbfe0).

For a batch of relaxed codes u (b, L), the learned database codes B (n, L), the batch's rows of the soft
similarity S (b, n) and omega (b,) = the database index of each batch item::

    hash  = (r / L) * (1 / (b n))     * sum_i sum_j (L S_ij - u_i^T B_j)^2
    quant = (r / L) * (gamma / (b n)) * sum_i ||u_i - B_omega(i)||^2
    loss  = hash + quant

with r = ``rescale_bits`` (12: SEMICON rescales every length to the 12-bit scale; 0 = no rescaling, the
plain ADSH of fghash / DSH_Analysis) and gamma = 200. B, S and omega come from the ``adsh`` training
protocol (``LossInputs.protocol``). Computed in float32 with autocast off. Parts: ``hash``, ``quant``.
"""

from __future__ import annotations

import attrs
import torch

from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit_plugins.losses._code_input import at_least_float32


@attrs.frozen
class ADSHLossConfig:
    #: weight of the quantisation term (must equal the protocol's gamma used in the DCC update)
    gamma: float = attrs.field(default=200.0, validator=attrs.validators.ge(0.0))
    #: multiply both terms by rescale_bits / L (SEMICON: 12); 0 disables the rescaling
    rescale_bits: int = attrs.field(default=12, validator=attrs.validators.ge(0))


class ADSHLoss(Loss):
    requires = ("codes", "protocol.B", "protocol.S", "protocol.omega")

    def __init__(self, cfg: ADSHLossConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, inputs: LossInputs) -> LossResult:
        state = inputs.protocol
        with torch.autocast(device_type=inputs.codes.device.type, enabled=False):
            u = at_least_float32(inputs.codes)
            B = state["B"].to(u)
            S = state["S"].to(u)
            omega = state["omega"].to(u.device)
            L = u.shape[1]
            norm = u.shape[0] * B.shape[0]
            scale = self.cfg.rescale_bits / L if self.cfg.rescale_bits else 1.0
            hash_loss = ((L * S - u @ B.t()) ** 2).sum() / norm * scale
            quant_loss = ((u - B[omega]) ** 2).sum() / norm * self.cfg.gamma * scale
        return LossResult(value=hash_loss + quant_loss, parts={"hash": hash_loss.detach(), "quant": quant_loss.detach()})


def build_adsh_loss(cfg: ADSHLossConfig, ctx: BuildContext) -> ADSHLoss:
    """ADSH asymmetric loss (SEMICON form: 12/L scaling, 1/(b n), gamma 200) against the protocol's B."""
    return ADSHLoss(cfg)


def _example():
    from hashkit.testing import ComponentExample, example_loss_inputs

    def inputs(comp):
        li = example_loss_inputs()
        g = torch.Generator().manual_seed(1)
        n = 10
        B = torch.randn(n, 12, generator=g).sign()
        S = torch.where(torch.rand(6, n, generator=g) > 0.7, 1.0, -0.2)
        li.protocol = {"B": B, "S": S, "omega": torch.arange(6)}
        return (li,)

    return ComponentExample(inputs=inputs)


def components(register):
    register("loss", "adsh", build_adsh_loss, config=ADSHLossConfig, example=_example)
