"""``dsdh``: DSDH, deep supervised discrete hashing (Li, Sun, He, Tan, NeurIPS 2017), as DeepHash-pytorch
trains it.

Buffers: the memory bank ``U (n, L)`` of raw outputs and ``Y (n, C)`` (see ``_memory_bank``), discrete codes
``B (n, L)`` and a linear classifier ``W (L, C)``, all zero at the start. Before every epoch
(``begin_epoch``, the first one included) ``dcc_iter`` rounds of::

    W ← (BᵀB + (ν/μ) I)⁻¹ Bᵀ Y                  (the L×L normal equations, B as (n, L))
    P = Y Wᵀ + (η/μ) U                          (n, L)
    for each bit k in order, in place:  B_k ← sign(P_k − B_¬k W_¬kᵀ w_k)

Per batch (``u`` the raw output, θ = ½ u Uᵀ)::

    loss = mean ℓ(θ, s)  +  μ · mean (y − B_ind W)²  +  ν · mean W²   (+ q · mean (B_ind − u)²)

The last two reference terms are constants for the network (B and W are buffers): DSDH trains as DPSH
without quantisation, and the paper's η‖b − u‖² is absent. ``quantization = q > 0`` adds it (fix).
μ = ν = 1, η = 55, dcc_iter = 10. In the first epoch U = Y = 0, so W = 0 and B = 0.
Parts: ``likelihood``, ``classification``, ``regularization``, ``quantization``.
Reference: swuxyj/DeepHash-pytorch @ ab14068 ``DSDH.py`` (``DSDHLoss``, ``updateBandW``).
"""

from __future__ import annotations

import attrs
import torch

from hashkit.interfaces import BuildContext, EpochStart, LossInputs, LossResult
from hashkit_plugins.losses._memory_bank import BankConfig, BankLoss
from hashkit_plugins.losses._pairwise import pairwise_likelihood


@attrs.frozen
class DSDHConfig(BankConfig):
    #: weight μ of the classification term (and of the B/W subproblem)
    mu: float = attrs.field(default=1.0, validator=attrs.validators.gt(0.0))
    #: weight ν of the W regulariser
    nu: float = attrs.field(default=1.0, validator=attrs.validators.ge(0.0))
    #: weight η of U in the B update
    eta: float = attrs.field(default=55.0, validator=attrs.validators.ge(0.0))
    #: rounds of the W / B alternation before each epoch
    dcc_iter: int = attrs.field(default=10, validator=attrs.validators.ge(1))
    #: fix: weight of the network's quantisation towards its discrete codes, mean (B_ind - u)^2 (reference: 0)
    quantization: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))


class DSDH(BankLoss):
    name = "dsdh"

    def __init__(self, cfg: DSDHConfig, ctx: BuildContext):
        super().__init__(cfg, ctx)
        if self.bank is None:
            from hashkit.errors import ContractError

            raise ContractError("loss 'dsdh' learns discrete codes per training item: it needs pairs = \"bank\"")
        rows = self.bank.codes.shape[0]
        self.register_buffer("B", torch.zeros(rows, self.code_length))
        self.register_buffer("W", torch.zeros(self.code_length, self.num_classes))

    @torch.no_grad()
    def begin_epoch(self, at: EpochStart) -> None:
        super().begin_epoch(at)
        self.update_codes_and_classifier()

    @torch.no_grad()
    def update_codes_and_classifier(self) -> None:
        """The reference's ``updateBandW``: ``dcc_iter`` rounds of the W solve and the bitwise B update."""
        cfg = self.cfg
        B, U, Y = self.B, self.bank.codes.to(self.B.dtype), self.bank.labels.to(self.B.dtype)
        eye = torch.eye(self.code_length, dtype=B.dtype, device=B.device)
        for _ in range(cfg.dcc_iter):
            W = torch.linalg.solve(B.t() @ B + (cfg.nu / cfg.mu) * eye, B.t() @ Y)
            P = Y @ W.t() + (cfg.eta / cfg.mu) * U
            for k in range(self.code_length):
                coupling = W @ W[k]
                coupling[k] = 0
                B[:, k] = torch.sign(P[:, k] - B @ coupling)
            self.W.copy_(W)

    def forward(self, inputs: LossInputs) -> LossResult:
        u, y = self.read(inputs)
        codes, labels = self.pair_with(inputs, u, y)
        rows = self._rows(inputs).to(self.B.device)
        b, W = self.B[rows].to(u.dtype), self.W.to(u.dtype)
        likelihood = pairwise_likelihood(u, y, codes, labels)
        classification = (y - b @ W).pow(2).mean()
        regularization = W.pow(2).mean()
        quantization = (b - u).pow(2).mean()
        value = likelihood + self.cfg.mu * classification + self.cfg.nu * regularization
        if self.cfg.quantization:
            value = value + self.cfg.quantization * quantization
        return LossResult(value=value, parts={"likelihood": likelihood, "classification": classification,
                                              "regularization": regularization, "quantization": quantization})


def build_dsdh(cfg: DSDHConfig, ctx: BuildContext) -> DSDH:
    """DSDH: DPSH's bank likelihood plus discrete codes and a linear classifier solved before each epoch."""
    return DSDH(cfg, ctx)


def components(register):
    from hashkit_plugins.losses._examples import bank_example

    register("loss", "dsdh", build_dsdh, config=DSDHConfig, example=bank_example)
