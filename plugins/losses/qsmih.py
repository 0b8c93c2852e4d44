"""``qsmih``: QSMIH, deep supervised hashing with quadratic spherical mutual information (Signal Processing:
Image Communication 2021), as DeepHash-pytorch trains it (ported from passalis/qsmi).

Batch only, all b×b pairs including the diagonal, ``u`` the raw output::

    û = u / (‖u‖ + 1e-8)        P = (1 + û ûᵀ) / 2        D_ij = 1[y_iᵀy_j > 0]        M = b² / Σ D
    loss = mean[(D ⊙ P − 1)² + P² / M]  +  α · mean | |û| − 1 |        (square_clamp = true, the default)
    loss = mean[P / M − D ⊙ P]          +  α · mean | |û| − 1 |        (square_clamp = false)

α = 0.01. The quantisation term on the unit-norm û cannot reach 0 (its entries are about 1/√L);
``quant_on = "raw"`` applies it to ``u`` instead (fix). Parts: ``mutual_information``, ``quantization``.
"""

from __future__ import annotations

from typing import Literal

import attrs

from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit_plugins.losses._batch_input import RawInputConfig, read_batch


@attrs.frozen
class QSMIHConfig(RawInputConfig):
    #: weight α of the quantisation term
    alpha: float = attrs.field(default=0.01, validator=attrs.validators.ge(0.0))
    #: the squared form of the reference's default ``use_square_clamp``; false = the linear form
    square_clamp: bool = True
    #: quantise the normalised "normalized" codes (reference) or the "raw" output (fix)
    quant_on: Literal["normalized", "raw"] = "normalized"


class QSMIH(Loss):
    def __init__(self, cfg: QSMIHConfig):
        super().__init__()
        self.cfg = cfg
        self.requires = (cfg.input, "labels")

    def forward(self, inputs: LossInputs) -> LossResult:
        u, y = read_batch(inputs, self.cfg.input, "qsmih")
        unit = u / (u.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-8)
        p = 0.5 * (unit @ unit.t() + 1)
        d = (y @ y.t() > 0).to(u.dtype)
        m = d.shape[1] ** 2 / d.sum()
        if self.cfg.square_clamp:
            mi = ((d * p - 1).pow(2) + p.pow(2) / m).mean()
        else:
            mi = (p / m - d * p).mean()
        q = unit if self.cfg.quant_on == "normalized" else u
        quantization = (q.abs() - 1).abs().mean()
        return LossResult(value=mi + self.cfg.alpha * quantization,
                          parts={"mutual_information": mi, "quantization": quantization})


def build_qsmih(cfg: QSMIHConfig, ctx: BuildContext) -> QSMIH:
    """QSMIH: quadratic spherical mutual information of the batch's pairs plus quantisation."""
    return QSMIH(cfg)


def components(register):
    register("loss", "qsmih", build_qsmih, config=QSMIHConfig)
