"""The memory bank of the generic pairwise losses, and the loss base class that owns one.

DeepHash-pytorch's DPSH, DHN, DSH, IDHN, ISDH, DBDH, DSDH, DFH and DPN (and DSH_Analysis's DSH, HashNet and
MDSH) compare each batch with the codes and labels of *every* training item, kept in two buffers:

- ``codes`` ``(rows, L)`` and ``labels`` ``(rows, C)``, zero-initialised (``init = "randn"``: N(0, 1), MDSH);
- each forward **first** overwrites the batch's rows in place with the detached current codes and labels,
  **then** the loss pairs every batch row ``i`` with every bank row ``j`` (the batch's own rows, at their
  current values, and never-written rows included);
- gradients flow through the batch factor only, never into the bank.

Rows are keyed by the training index (``key = "index"``: ``LossInputs.indices``, bank sized
``BuildContext.num_train``) or by the position in the current round's sample (``key = "position"``:
``protocol.position`` of the ``sampled_rounds`` protocol, bank of ``rows`` rows), as DSH_Analysis does.
``reset = "round"`` refills the bank at the start of every round (DSH_Analysis's DSH and MDSH).

Options that fix the reference's quirks (off by default, see docs/methods/generic.md):
``mask_unfilled`` leaves never-written rows out of the mean; ``symmetric_batch_block`` lets the gradient flow
through the batch's own bank rows as well. ``pairs = "batch"`` drops the bank: pairs within the batch, both
factors live (the batch-only form).

The buffers are part of the loss's state dict, so checkpoints save them (``losses.<i>.bank.*``) and a
resumed run continues with the same bank.
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
from torch import Tensor, nn

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, EpochStart, Loss, LossInputs
from hashkit_plugins.losses._batch_input import code_and_class_sizes
from hashkit_plugins.losses._code_input import CodeInput, code_tensor, label_tensor


@attrs.frozen
class BankConfig:
    """Memory-bank options shared by the bank losses (flat keys in a recipe's ``[[losses]]`` table)."""

    #: model output the loss reads: raw "logits" (the references have no activation) or bounded "codes"
    input: CodeInput = "logits"
    #: pair each batch row with a memory "bank" of all training items (reference) or within the "batch" only
    pairs: Literal["bank", "batch"] = "bank"
    #: bank rows keyed by training "index" or by "position" in the round's sample (protocol.position)
    key: Literal["index", "position"] = "index"
    #: rows of a position-keyed bank (the sampled_rounds protocol's num_samples); index banks use num_train
    rows: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    #: "round": refill the bank at the start of every round (DSH_Analysis DSH, MDSH); "never" (DeepHash-pytorch)
    reset: Literal["never", "round"] = "never"
    #: content of a fresh bank: "zeros", or "randn" codes and labels (MDSH)
    init: Literal["zeros", "randn"] = "zeros"
    #: seed of the "randn" init (drawn per round)
    seed: int = 0
    #: fix: leave never-written rows out of the pairs (the reference counts them as dissimilar zero codes)
    mask_unfilled: bool = False
    #: fix: gradient through the batch's own bank rows too (the reference pairs them with a detached copy)
    symmetric_batch_block: bool = False


class MemoryBank(nn.Module):
    """Buffers ``codes (rows, L)``, ``labels (rows, C)``, ``filled (rows,)``; see the module docstring."""

    def __init__(self, cfg: BankConfig, rows: int, code_length: int, num_classes: int):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("codes", torch.zeros(rows, code_length))
        self.register_buffer("labels", torch.zeros(rows, num_classes))
        self.register_buffer("filled", torch.zeros(rows, dtype=torch.bool))
        self.reset(0)

    @torch.no_grad()
    def reset(self, round_index: int) -> None:
        if self.cfg.init == "randn":
            g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + round_index)
            self.codes.copy_(torch.randn(self.codes.shape, generator=g, dtype=self.codes.dtype))
            self.labels.copy_(torch.randn(self.labels.shape, generator=g, dtype=self.labels.dtype))
        else:
            self.codes.zero_()
            self.labels.zero_()
        self.filled.zero_()

    @torch.no_grad()
    def write(self, rows: Tensor, codes: Tensor, labels: Tensor) -> None:
        """Overwrite ``rows`` in place with the detached ``codes (b, L)`` and ``labels (b, C)``."""
        rows = rows.to(self.codes.device)
        if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= self.codes.shape[0]):
            raise ContractError(f"memory bank: row {int(rows.max())} outside the bank's {self.codes.shape[0]} rows "
                                "(is num_train, or rows for a position-keyed bank, right?)")
        self.codes[rows] = codes.detach().to(self.codes.dtype)
        self.labels[rows] = labels.detach().to(self.labels.dtype)
        self.filled[rows] = True

    def operands(self, z: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
        """The bank's ``(codes, labels)`` to pair the batch with, in ``z``'s dtype (after :meth:`write`)."""
        codes, labels = self.codes.to(z.dtype), self.labels.to(z.dtype)
        if self.cfg.symmetric_batch_block:
            codes = codes.index_put((rows.to(codes.device),), z)
        if self.cfg.mask_unfilled:
            codes, labels = codes[self.filled], labels[self.filled]
        return codes, labels


def bank_rows(cfg: BankConfig, ctx: BuildContext, loss_name: str) -> int:
    if cfg.key == "position":
        if not cfg.rows:
            raise ContractError(f"loss {loss_name!r}: key = \"position\" needs rows = the protocol's num_samples")
        return cfg.rows
    if not ctx.num_train:
        raise ContractError(f"loss {loss_name!r} keeps a memory bank of the training set and needs its size "
                            "(BuildContext.num_train; pairs = \"batch\" needs none)")
    return int(ctx.num_train)


class BankLoss(Loss):
    """Base of the losses that pair a batch with a memory bank: reads the input, owns ``self.bank``."""

    name = "bank loss"

    def __init__(self, cfg: BankConfig, ctx: BuildContext, *, bank: bool = True):
        super().__init__()
        self.cfg = cfg
        self.code_length, self.num_classes = code_and_class_sizes(ctx, self.name)
        use_bank = bank and cfg.pairs == "bank"
        self.bank = MemoryBank(cfg, bank_rows(cfg, ctx, self.name), self.code_length, self.num_classes) \
            if use_bank else None
        needs = [cfg.input, "labels"]
        if use_bank:
            needs.append("protocol.position" if cfg.key == "position" else "indices")
        self.requires = tuple(needs)

    def read(self, inputs: LossInputs) -> tuple[Tensor, Tensor]:
        """The model output ``u (b, L)`` and labels ``y (b, C)`` in the compute dtype."""
        u = code_tensor(inputs, self.cfg.input, self.name)
        return u, label_tensor(inputs, u, self.name)

    def _rows(self, inputs: LossInputs) -> Tensor:
        if self.cfg.key == "position":
            if "position" not in inputs.protocol:
                raise ContractError(f"loss {self.name!r}: key = \"position\" needs protocol.position "
                                    "(training_protocol \"sampled_rounds\")")
            return inputs.protocol["position"].long()
        if inputs.indices is None:
            raise ContractError(f"loss {self.name!r} needs LossInputs.indices to update its memory bank")
        return inputs.indices.long()

    def pair_with(self, inputs: LossInputs, z: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Write the batch's detached ``z``/``y`` into the bank (in place, before the loss) and return the
        ``(codes, labels)`` the batch is paired with; without a bank: the batch itself, ``z`` live."""
        if self.bank is None:
            return z, y
        rows = self._rows(inputs)
        self.bank.write(rows, z, y)
        return self.bank.operands(z, rows)

    def begin_epoch(self, at: EpochStart) -> None:
        if self.bank is not None and self.cfg.reset == "round" and at.epoch_in_round == 0:
            self.bank.reset(at.round)
