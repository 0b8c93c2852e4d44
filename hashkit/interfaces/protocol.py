"""Training protocol: the outer structure of training and where database codes come from.

A protocol decides, per *round* (ADSH: an outer iteration; pointwise: one epoch), which training items are
visited, what per-batch state the losses receive, what it learns from the batch outputs, and whether the
retrieval database is a learned code matrix or is encoded by the network.

Life cycle driven by the trainer (:mod:`hashkit.training`)::

    protocol.setup(train_labels, generator)          # once; (n, C) float multi-hot labels
    for round in range(start_round, protocol.num_rounds):
        wanted = protocol.embedding_request(round, generator)   # optional: items to embed with the current
        if wanted is not None:                                  # model (eval mode, test transform), e.g.
            protocol.refresh_embeddings(wanted, embeddings)     # for hard-negative mining
        order = protocol.begin_round(round, generator)   # int64 indices into the training split
        for epoch in range(protocol.epochs_per_round):
            for batch of indices drawn from `order` (shuffled by the trainer's sampler):
                state = protocol.batch_state(indices)    # dict for LossInputs.protocol
                ... forward, losses, backward ...
                protocol.observe(indices, codes.detach())
        protocol.end_round()                          # e.g. the DCC update of B

Tensor contract
---------------
- ``setup``: ``train_labels`` ``(n, C)`` float; ``code_length`` is known from the build context.
- ``batch_state(indices)``: ``indices`` ``(b,)`` int64 -> ``{name: tensor}`` on the indices' device.
- ``observe(indices, codes)``: ``codes`` ``(b, L)`` float32 detached (the descriptor ``(b, D)`` for a model
  without hash head).
- ``embedding_request(round, generator)``: ``None`` (default) or int64 training indices; the trainer then
  calls ``refresh_embeddings(indices, embeddings)`` with ``(n, L)`` relaxed codes (or ``(n, D)``
  descriptors: a model without hash head, or ``embedding_output = "descriptor"``) of those items from the
  current model in eval mode with the evaluation transform.
- ``batch_state(indices)`` is computed before the forward pass: the model's aggregation receives it as
  ``AggregationInput.context`` and the losses as ``LossInputs.protocol``.
- ``database_codes()``: ``(n, L)`` float ±1 codes the protocol gives the training split's items, or ``None``
  when the database must be encoded by the network. What they are is the class attribute ``database``:

  - ``"learned"``: codes learned during training (ADSH's ``B`` from the DCC update);
  - ``"label"``: codes derived from the labels alone (FISH / CHN style class codes, fixed before or during
    training): ``database_codes()`` returns the code of each training item's label(s);
  - ``"encoded"``: no codes of its own (``database_codes()`` is ``None``); the network encodes the database.

  Row ``i`` of ``database_codes()`` belongs to training item ``i``. In the fine-grained protocols the
  training split *is* the (seen) database, so these codes stand for the database images; under a
  seen/unseen split (open-set protocols) they are the seen part ``D_s`` of every database and the unseen part
  ``D_u`` is always encoded (docs/benchmarks.md). The recipe's ``eval.database`` may name ``"learned"`` or
  ``"label"`` only when it is the protocol's ``database``, and ``"encoded"`` always.
- ``state_dict()`` / ``load_state_dict()``: plain ``{name: tensor}`` (safetensors-ready), with everything
  needed to resume mid-run (B, sample indices, U, similarity).
"""

from __future__ import annotations

import torch
from torch import Tensor


class TrainingProtocol:
    """Base class of training protocols. ``num_rounds`` and ``epochs_per_round`` set the loop; a protocol that
    visits a subset of the training items per round says how many in ``num_samples`` (after ``setup``)."""

    num_rounds: int = 1
    epochs_per_round: int = 1
    #: where the database codes of the training items come from: "learned" or "label" (``database_codes()``),
    #: or "encoded" (the network; ``database_codes()`` is None). See the module docstring.
    database: str = "encoded"
    #: what ``refresh_embeddings`` receives: relaxed "codes" or the model's real-valued "descriptor"
    embedding_output: str = "codes"

    def setup(self, train_labels: Tensor, generator: torch.Generator) -> None:
        self.num_train = int(train_labels.shape[0])

    def begin_round(self, round_index: int, generator: torch.Generator) -> Tensor:
        return torch.arange(self.num_train)

    def embedding_request(self, round_index: int, generator: torch.Generator) -> Tensor | None:
        return None

    def refresh_embeddings(self, indices: Tensor, embeddings: Tensor) -> None:
        pass

    def batch_state(self, indices: Tensor) -> dict[str, Tensor]:
        return {}

    def observe(self, indices: Tensor, codes: Tensor) -> None:
        pass

    def end_round(self) -> None:
        pass

    def database_codes(self) -> Tensor | None:
        return None

    def state_dict(self) -> dict[str, Tensor]:
        return {}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        pass

    def to(self, device: torch.device | str) -> "TrainingProtocol":
        return self
