"""``mdsh``: MDSH, deep hashing with minimal-distance-separated hash centers (Wang, Pan, Liu, Lai, Yin, Liu,
CVPR 2023), as DSH_Analysis trains it (``center.py``, ``MDSHLoss``).

``z`` the tanh codes (``input = "codes"``); one fixed ±1 centre ``h_c`` per class (buffer ``centers``, C×L);
a memory bank ``U``, ``Y`` of the round (re-filled with N(0, 1) noise at the start of every round, the batch
written first, see ``_memory_bank``)::

    p_ic = softmax_c(√L · cos(z_i, h_c))
    L_c  = −mean_{i,c} [y_ic log p_ic + (1 − y_ic) log(1 − p_ic)]
    L_p  = Σ_ij s_ij log(1 + e^{½(1 − cos(z_i, U_j))}) / Σ_ij s_ij,   s_ij = 1[y_iᵀY_j > 0]
    loss = 10 · L_c + L_p + 1e-4 · mean (|z| − 1)²

with ``L_p`` only from the within-round epoch ``epoch_change`` on (0-based; 11 with 30 epochs per round,
1 with 3). The random bank labels make ``s`` random for rows not yet written, as in the reference.

Centres: the reference loads ``hash_centers/num_classes-C-bit-L.npy`` or generates them by an ℓp-box ADMM
search; hashkit uses its own codebook by default (``hash_centers.build_centers``: Hadamard/Paley rows, then
greedy balanced codes farthest from the chosen set [inferred design]) and records its minimum distance
(buffer ``min_distance``); ``centers_file`` loads a ``.npy`` (C×L, ±1; e.g. a reference centre file).
Parts: ``center``, ``pair``, ``quantization``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import attrs
import numpy as np
import torch
import torch.nn.functional as F

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, EpochStart, LossInputs, LossResult
from hashkit_plugins.losses._code_input import CodeInput
from hashkit_plugins.losses._memory_bank import BankConfig, BankLoss
from hashkit_plugins.losses.hash_centers import build_centers, min_pairwise_distance


@attrs.frozen
class MDSHConfig(BankConfig):
    input: CodeInput = "codes"
    reset: Literal["never", "round"] = "round"
    init: Literal["zeros", "randn"] = "randn"
    #: weight of the centre term L_c
    center_weight: float = attrs.field(default=10.0, validator=attrs.validators.ge(0.0))
    #: weight of the quantisation term mean (|z| - 1)^2
    quantization: float = attrs.field(default=1e-4, validator=attrs.validators.ge(0.0))
    #: first within-round epoch (0-based) with the pair term
    epoch_change: int = attrs.field(default=11, validator=attrs.validators.ge(0))
    #: a .npy file of ±1 centres (C, L); empty = hashkit's codebook
    centers_file: str = ""
    #: seed of hashkit's codebook
    centers_seed: int = 0


def load_centers(path: str, num_classes: int, length: int) -> torch.Tensor:
    try:
        array = np.load(Path(path).expanduser(), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ContractError(f"mdsh: cannot read centers_file {path!r} ({exc})") from None
    if array.shape != (num_classes, length) or not np.isin(array, (-1, 1)).all():
        raise ContractError(f"mdsh: centers_file {path!r} must hold a ({num_classes}, {length}) array of ±1, "
                            f"found shape {tuple(array.shape)}")
    return torch.as_tensor(array, dtype=torch.get_default_dtype())


class MDSH(BankLoss):
    name = "mdsh"

    def __init__(self, cfg: MDSHConfig, ctx: BuildContext):
        super().__init__(cfg, ctx)
        if cfg.centers_file:
            centers = load_centers(cfg.centers_file, self.num_classes, self.code_length)
        else:
            centers = build_centers(self.num_classes, self.code_length, seed=cfg.centers_seed)
        self.register_buffer("centers", centers.to(torch.get_default_dtype()))
        self.register_buffer("min_distance", torch.tensor(min_pairwise_distance(centers)))
        self.register_buffer("epoch_in_round", torch.tensor(0))

    def begin_epoch(self, at: EpochStart) -> None:
        super().begin_epoch(at)
        self.epoch_in_round.fill_(at.epoch_in_round)

    def forward(self, inputs: LossInputs) -> LossResult:
        z, y = self.read(inputs)
        codes, labels = self.pair_with(inputs, z, y)
        length = z.shape[1]
        zn = F.normalize(z, dim=1)
        p = torch.softmax(length ** 0.5 * zn @ F.normalize(self.centers.to(z.dtype), dim=1).t(), dim=1)
        center = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
        if int(self.epoch_in_round) >= self.cfg.epoch_change:
            s = (y @ labels.t() > 0).to(z.dtype)
            cos = zn @ F.normalize(codes, dim=1).t()
            pair = (s * torch.log(1 + torch.exp(0.5 * (1 - cos)))).sum() / s.sum()
        else:
            pair = z.sum() * 0.0
        quantization = (z.abs() - 1).pow(2).mean()
        value = self.cfg.center_weight * center + pair + self.cfg.quantization * quantization
        return LossResult(value=value, parts={"center": center, "pair": pair, "quantization": quantization})


def build_mdsh(cfg: MDSHConfig, ctx: BuildContext) -> MDSH:
    """MDSH: softmax over cosines to fixed well-separated hash centres plus a positive-pair term on a bank."""
    return MDSH(cfg, ctx)


def components(register):
    from hashkit_plugins.losses._examples import bank_example

    register("loss", "mdsh", build_mdsh, config=MDSHConfig, example=bank_example)
