"""``adsh``: asymmetric deep supervised hashing as SEMICON trains it (``SEMICON_train.py`` of
aassxun/SEMICON @ 885cbfe0; Jiang & Li, AAAI 2018).

State (n = training/database items, m = ``num_samples``, L = bits):

- ``B`` (n, L) float32: database codes, initialised ``randn`` (real-valued, not signed: the whole first
  round's loss uses the Gaussian B), replaced column by column by the DCC update;
- per round: ``sample_index`` (m,) = ``randperm(n)[:m]``, and the soft similarity ``S`` (m, n):
  +1 where sample i and database item j share a label (multi-hot dot product > 0), else -1, then with
  r = sum(S) / sum(1 - S): ``S <- S (1 + r) - r`` (negatives become -P/N, positives stay 1);
- ``U`` (m, L): the latest network output of each sampled item (kept across rounds, as officially).

Per batch the losses (and the model's aggregation, as ``context``) receive ``{"B": B, "S": S[rows],
"omega": indices}`` (``provides``), where rows are the batch items' positions in the sample.

Class anchors (ExchNet's local feature alignment, ``anchors_after = a > 0``): before every round r >= a (i.e.
after the a-th outer iteration, as the reference's ``align_step``) the protocol asks the trainer for the
current model's descriptors of every training item (eval mode, evaluation transform) and keeps their class
means (C, D) (class = first label of the multi-hot row, the reference's ``argmax``; classes without items get
zeros instead of the reference's 0/0). Batches of those rounds also receive ``"anchors"`` (b, D): the anchor
row of each item's class. The anchors are part of the resumable state. ``end_round`` runs one DCC sweep in bit order, in place::

    Ubar = zeros(n, L); Ubar[sample_index] = U;   Q = L S^T U + gamma Ubar
    for k in 0..L-1:  B[:, k] = sign(Q[:, k] - (B[:, !k] @ U[:, !k]^T) @ U[:, k])

``database_codes()`` = sign(B) (``zero_to = "zero"`` keeps sign(0) = 0 as officially; ``"plus_one"`` maps it
to +1). Before the first DCC update that is the sign of the Gaussian init. The database is ``learned``.

Resuming: ``state_dict`` holds B, U, S, sample_index and the round whose sample is current;
``begin_round(r)`` for that same round returns the restored sample instead of drawing a new one.
"""

from __future__ import annotations

import warnings
from typing import Literal

import attrs
import torch
from torch import Tensor

from hashkit.errors import ContractError, RecipeWarning
from hashkit.interfaces import BuildContext, TrainingProtocol
from hashkit.testing import ComponentExample


@attrs.frozen
class ADSHProtocolConfig:
    #: outer iterations (official max_iter: 40 for CUB/Aircraft, 50 for Food101/NABirds/VegFru)
    rounds: int = attrs.field(default=40, validator=attrs.validators.ge(1))
    #: epochs over the sample per round (official max_epoch = 30)
    epochs: int = attrs.field(default=30, validator=attrs.validators.ge(1))
    #: m, items sampled per round (clamped to the training-set size)
    num_samples: int = attrs.field(default=2000, validator=attrs.validators.ge(1))
    #: quantisation weight in the DCC update (must equal the adsh loss's gamma)
    gamma: float = attrs.field(default=200.0, validator=attrs.validators.ge(0.0))
    #: soften the negatives of S to -P/N (official); false keeps -1
    soft_similarity: bool = True
    #: sign(0) in database_codes(): "zero" (official) or "plus_one"
    zero_to: Literal["zero", "plus_one"] = "zero"
    #: ExchNet's align_step: class anchors from the model's descriptors before every round >= this (0 = none)
    anchors_after: int = attrs.field(default=0, validator=attrs.validators.ge(0))


def soft_similarity(sample_labels: Tensor, labels: Tensor, soft: bool = True) -> Tensor:
    """(m, C), (n, C) multi-hot -> S (m, n): +1 shared label, -1 otherwise, negatives softened to -P/N."""
    S = torch.where(sample_labels @ labels.t() > 0, 1.0, -1.0).to(labels.dtype)
    if soft:
        r = S.sum() / (1 - S).sum()
        S = S * (1 + r) - r
    return S


def dcc_update(B: Tensor, U: Tensor, S: Tensor, sample_index: Tensor, gamma: float) -> Tensor:
    """One in-place DCC sweep over the bits of ``B`` (n, L) in order; returns ``B``."""
    L = B.shape[1]
    expand_u = torch.zeros_like(B)
    expand_u[sample_index] = U
    Q = (L * S).t() @ U + gamma * expand_u
    for k in range(L):
        B_rest = torch.cat((B[:, :k], B[:, k + 1:]), dim=1)
        U_rest = torch.cat((U[:, :k], U[:, k + 1:]), dim=1)
        B[:, k] = (Q[:, k] - B_rest @ U_rest.t() @ U[:, k]).sign()
    return B


class ADSHProtocol(TrainingProtocol):
    database = "learned"
    embedding_output = "descriptor"

    def __init__(self, cfg: ADSHProtocolConfig, code_length: int):
        self.cfg = cfg
        self.provides = ("B", "S", "omega") + (("anchors",) if cfg.anchors_after else ())
        self.anchors: Tensor | None = None
        self.code_length = code_length
        self.num_rounds = cfg.rounds
        self.epochs_per_round = cfg.epochs
        self.device = torch.device("cpu")
        self.B: Tensor | None = None
        self.U: Tensor | None = None
        self.S: Tensor | None = None
        self.sample_index: Tensor | None = None
        self.round = -1

    # -- life cycle -------------------------------------------------------------------------------
    def setup(self, train_labels: Tensor, generator: torch.Generator) -> None:
        self.num_train = int(train_labels.shape[0])
        self.labels = train_labels.float().to(self.device)
        self.num_samples = min(self.cfg.num_samples, self.num_train)
        self.B = torch.randn(self.num_train, self.code_length, generator=generator).to(self.device)
        self.U = torch.zeros(self.num_samples, self.code_length, device=self.device)
        self._positions = None

    def _require_setup(self) -> None:
        if self.B is None:
            raise ContractError("adsh protocol: setup(train_labels, generator) must run first")

    def begin_round(self, round_index: int, generator: torch.Generator) -> Tensor:
        self._require_setup()
        if round_index != self.round or self.sample_index is None:
            self.sample_index = torch.randperm(self.num_train, generator=generator)[: self.num_samples].to(self.device)
            self.S = soft_similarity(self.labels[self.sample_index], self.labels, self.cfg.soft_similarity)
            self.round = round_index
        self._positions = None
        return self.sample_index.cpu()

    def embedding_request(self, round_index: int, generator: torch.Generator) -> Tensor | None:
        if self.cfg.anchors_after and round_index >= self.cfg.anchors_after:
            return torch.arange(self.num_train)
        return None

    def refresh_embeddings(self, indices: Tensor, embeddings: Tensor) -> None:
        """Class anchors (C, D): the mean descriptor of each class over ``indices`` (zeros for empty classes)."""
        classes = self.labels[indices.to(self.device)].argmax(dim=1)
        emb = embeddings.float().to(self.device)
        sums = torch.zeros(self.labels.shape[1], emb.shape[1], device=self.device).index_add_(0, classes, emb)
        counts = torch.bincount(classes, minlength=self.labels.shape[1]).clamp_min(1).unsqueeze(1)
        self.anchors = sums / counts

    def _rows(self, indices: Tensor) -> Tensor:
        if self._positions is None:
            pos = torch.full((self.num_train,), -1, dtype=torch.long, device=self.device)
            pos[self.sample_index] = torch.arange(len(self.sample_index), device=self.device)
            self._positions = pos
        rows = self._positions[indices.to(self.device)]
        if (rows < 0).any():
            raise ContractError("adsh protocol: the batch holds training items outside this round's sample "
                                "(batches must be drawn from begin_round's indices)")
        return rows

    def batch_state(self, indices: Tensor) -> dict[str, Tensor]:
        self._require_setup()
        rows = self._rows(indices)
        omega = indices.to(self.device)
        state = {"B": self.B, "S": self.S[rows], "omega": omega}
        if self.anchors is not None:
            state["anchors"] = self.anchors[self.labels[omega].argmax(dim=1)]
        return state

    def observe(self, indices: Tensor, codes: Tensor) -> None:
        self.U[self._rows(indices)] = codes.detach().float().to(self.device)

    def end_round(self) -> None:
        self._require_setup()
        dcc_update(self.B, self.U, self.S, self.sample_index, self.cfg.gamma)

    def database_codes(self) -> Tensor | None:
        if self.B is None:
            return None
        codes = torch.sign(self.B).float()
        if self.cfg.zero_to == "plus_one":
            codes = torch.where(codes == 0, torch.ones_like(codes), codes)
        return codes

    # -- state --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Tensor]:
        if self.B is None:
            return {}
        state = {"B": self.B, "U": self.U, "round": torch.tensor(self.round, dtype=torch.long)}
        if self.sample_index is not None:
            state["sample_index"] = self.sample_index
            state["S"] = self.S
        if self.anchors is not None:
            state["anchors"] = self.anchors
        return {k: v.detach().cpu().contiguous() for k, v in state.items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if not state:
            return
        missing = {"B", "U", "round"} - set(state)
        if missing:
            raise ContractError(f"adsh protocol state lacks {sorted(missing)}")
        if state["B"].shape[1] != self.code_length:
            raise ContractError(f"adsh protocol state has {state['B'].shape[1]}-bit B, the model has {self.code_length}")
        self.B = state["B"].float().clone().to(self.device)
        self.U = state["U"].float().clone().to(self.device)
        self.num_train, self.num_samples = self.B.shape[0], self.U.shape[0]
        self.round = int(state["round"])
        self.sample_index = state["sample_index"].long().clone().to(self.device) if "sample_index" in state else None
        self.S = state["S"].float().clone().to(self.device) if "S" in state else None
        self.anchors = state["anchors"].float().clone().to(self.device) if "anchors" in state else None
        self._positions = None

    def to(self, device: torch.device | str) -> "ADSHProtocol":
        self.device = torch.device(device)
        for name in ("B", "U", "S", "sample_index", "labels", "anchors"):
            value = getattr(self, name, None)
            if value is not None:
                setattr(self, name, value.to(self.device))
        self._positions = None
        return self


def build_adsh_protocol(cfg: ADSHProtocolConfig, ctx: BuildContext) -> ADSHProtocol:
    """ADSH rounds: per-round sample of m items, soft S, learned database codes B by one DCC sweep per round."""
    if not ctx.code_length:
        raise ContractError("the adsh protocol needs a code length (recipe code_lengths)")
    if ctx.num_train is not None and cfg.num_samples > ctx.num_train:
        warnings.warn(f"protocol.num_samples = {cfg.num_samples} is more than the {ctx.num_train} training items; "
                      f"each round samples all {ctx.num_train}", RecipeWarning, stacklevel=2)
    return ADSHProtocol(cfg, ctx.code_length)


def components(register):
    # The conformance example has a few dozen training items: sample fewer than that, as a real recipe does.
    register("training_protocol", "adsh", build_adsh_protocol, config=ADSHProtocolConfig,
             example=lambda: ComponentExample(config={"num_samples": 8}))
