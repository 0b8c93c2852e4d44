"""``psldh``: PSLDH, partial-softmax loss based deep hashing (Tu, Mao, Guo, Wei, Huang, WWW 2021), as
DSH_Analysis trains it (``psldh.py``, ``models/psldh_model.py``).

Stage 1 (at build time, seeded, no data needed): a label network ``C → 512 → ReLU → L → tanh`` on the identity
matrix ``I_C``, ``label_steps`` SGD steps (lr 1e-3 × 0.1^⌊(t+1)/100⌋ at step t, weight decay 1e-4, no momentum)
on ``Σ ReLU(QQᵀ − L I)² / C² + 0.05 ‖1ᵀQ‖² / C + 0.01 ‖sign Q − Q‖² / C``; the label codes ``c_k = sign Q_k``
are the buffer ``label_codes`` (C, L).

Stage 2 (this loss), ``h`` the tanh codes (``input = "codes"``), ``l_ik = h_iᵀ c_k``; for each label k of
sample i::

    p_ik = e^{γ(l_ik − σL)} / (e^{γ(l_ik − σL)} + Σ_{k′∉y_i} e^{γ l_ik′})
    loss = −(1/b) Σ_i (1/|y_i|) Σ_{k∈y_i} log p_ik  +  (λ/b) Σ_i ‖sign h_i − h_i‖²

γ = 0.2, σ = 0.2, λ (``quantization``) = 0.01. Computed in log-sum-exp form: equal to the reference's plain
exponentials wherever those are finite (they overflow once γL + ln C > 88). Parts: ``partial_softmax``,
``quantization``.
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor, nn

from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit_plugins.losses._batch_input import RawInputConfig, code_and_class_sizes, read_batch
from hashkit_plugins.losses._code_input import CodeInput


@attrs.frozen
class PSLDHConfig(RawInputConfig):
    #: the tanh codes of the hash layer (DSH_Analysis's hash_net ends in tanh)
    input: CodeInput = "codes"
    #: scale γ of the logits
    gamma: float = attrs.field(default=0.2, validator=attrs.validators.gt(0.0))
    #: margin σ (as a fraction of L) on the positive logits
    sigma: float = 0.2
    #: weight λ of the quantisation term (the reference's "lamda")
    quantization: float = attrs.field(default=0.01, validator=attrs.validators.ge(0.0))
    #: stage 1: SGD steps of the label network, its hidden width, and the seed of its init
    label_steps: int = attrs.field(default=200, validator=attrs.validators.ge(0))
    label_hidden: int = attrs.field(default=512, validator=attrs.validators.ge(1))
    seed: int = 0


def label_codes(num_classes: int, length: int, *, steps: int = 200, hidden: int = 512, seed: int = 0) -> Tensor:
    """Stage 1 of PSLDH: ``(C, L)`` ±1 label codes from a small label network trained on ``I_C``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(num_classes, hidden), nn.ReLU(), nn.Linear(hidden, length), nn.Tanh())
    eye = torch.eye(num_classes, dtype=net[0].weight.dtype)
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3, weight_decay=1e-4)
    with torch.enable_grad():
        for step in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = 1e-3 * 0.1 ** ((step + 1) // 100)  # StepLR(100, 0.1) stepped before each step
            q = net(eye)
            spread = torch.relu(q @ q.t() - length * eye).pow(2).sum() / num_classes ** 2
            balance = q.sum(dim=0).pow(2).sum() / num_classes
            quant = (torch.sign(q) - q).pow(2).sum() / num_classes
            loss = spread + 0.05 * balance + 0.01 * quant
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        return torch.sign(net(eye))


class PSLDH(Loss):
    def __init__(self, cfg: PSLDHConfig, num_classes: int, code_length: int):
        super().__init__()
        self.cfg = cfg
        self.requires = (cfg.input, "labels")
        codes = label_codes(num_classes, code_length, steps=cfg.label_steps, hidden=cfg.label_hidden, seed=cfg.seed)
        self.register_buffer("label_codes", codes)

    def forward(self, inputs: LossInputs) -> LossResult:
        h, y = read_batch(inputs, self.cfg.input, "psldh")
        gamma, length = self.cfg.gamma, h.shape[1]
        logits = gamma * (h @ self.label_codes.to(h.dtype).t())
        positive = y > 0
        shifted = logits - gamma * self.cfg.sigma * length
        negatives = torch.logsumexp(logits.masked_fill(positive, float("-inf")), dim=1, keepdim=True)
        log_p = shifted - torch.logaddexp(shifted, negatives)
        per_sample = (log_p * positive).sum(dim=1) / y.sum(dim=1)
        partial = -per_sample.mean()
        quantization = (torch.sign(h) - h).pow(2).sum() / h.shape[0]
        return LossResult(value=partial + self.cfg.quantization * quantization,
                          parts={"partial_softmax": partial, "quantization": quantization})


def build_psldh(cfg: PSLDHConfig, ctx: BuildContext) -> PSLDH:
    """PSLDH: partial softmax over fixed label codes (learned by a label network at build) plus quantisation."""
    length, classes = code_and_class_sizes(ctx, "psldh")
    return PSLDH(cfg, classes, length)


def components(register):
    register("loss", "psldh", build_psldh, config=PSLDHConfig)
