"""``gdfnet_hash``: the hash loss of GDF-Net's author code, reproduced exactly (faithful code losses).

On the hash layer's raw output ``h (B, L)`` (``input = "logits"``, the author's ``hash_bit``)::

    L_q = mean_{i,k} (|h_ik| - 1)^2                          L2 quantisation
    L_b = (1/B) Σ_i (Σ_k sgn(h_ik))^2,  sgn(h) = +1 if h >= 0 else -1      per-code balance on the signs
    loss = (L_q + L_b) / B

(wencylang/GDF-net @ 2d462f02, ``hash_loss``: the balance is the mean of a B x B matrix whose row i holds
``Σ_k sgn(h_ik)``, squared.) ``sgn`` has no gradient, so **L_b does nothing in back-propagation**: it is
reported (part ``balance``) but only L_q trains. gdfnet.toml uses the paper's intent instead (Cauchy
quantisation + a differentiable bit balance, docs/methods/gdfnet.md); ``recipes/gdfnet-faithful.toml`` is
the ``faithful_code_losses`` option with this loss. The division by the batch size is the author's.
"""

from __future__ import annotations

import attrs
import torch

from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit_plugins.losses._code_input import CodeInput, code_tensor


@attrs.frozen
class GDFNetHashConfig:
    #: the author applies it to the raw hash-layer output h
    input: CodeInput = "logits"


class GDFNetHashLoss(Loss):
    def __init__(self, cfg: GDFNetHashConfig):
        super().__init__()
        self.cfg = cfg
        self.requires = (cfg.input,)

    def forward(self, inputs: LossInputs) -> LossResult:
        h = code_tensor(inputs, self.cfg.input, "gdfnet_hash")
        b = h.shape[0]
        quantization = (h.abs() - 1).pow(2).mean()
        signs = torch.where(h >= 0, 1.0, -1.0)  # no gradient, as in the author code
        balance = signs.sum(dim=1).pow(2).mean()
        return LossResult(value=(quantization + balance) / b, parts={"quantization": quantization, "balance": balance})


def build_gdfnet_hash(cfg: GDFNetHashConfig, ctx: BuildContext) -> GDFNetHashLoss:
    """GDF-Net author code's hash loss: (L2 quantisation + gradient-free per-code sign balance) / batch."""
    return GDFNetHashLoss(cfg)


def components(register):
    register("loss", "gdfnet_hash", build_gdfnet_hash, config=GDFNetHashConfig)
