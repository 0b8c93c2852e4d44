"""``tuples``: landmark-retrieval training with tuples (query, positive, hard negatives), database encoded.

[inferred design, docs/methods/dagf.md §training] Each round:

1. ``queries_per_round`` anchors are drawn (items with at least one other item sharing a label);
2. each gets a positive: a random other item sharing a label with it;
3. and ``negatives`` hard negatives: the items sharing no label with the anchor whose embedding in the
   protocol's memory bank is most similar to the anchor's (cosine), taken greedily so that no two
   negatives of one tuple share a label (``distinct_negatives``); items without a bank entry are not mined;
   with no usable bank (round 0) the negatives are random;
4. ``begin_round`` returns the tuples laid end to end, ``[q, p, n1..nk, q, p, ...]`` in random tuple order.

The trainer must keep that order (and, under DDP, shard batches on tuple boundaries): the recipe sets ``data.sampler.name = "sequential"`` and a
``data.batch_size`` that is a multiple of the tuple size ``2 + negatives``; ``batch_state`` checks it and
hands the losses ``tuple_id`` ``(b,)`` int64 (tuple number inside the batch) and ``tuple_role`` ``(b,)``
int64 (0 = query, 1 = positive, 2 = negative) — see the ``contrastive`` loss.

Mining with the current model: before each round the trainer embeds the items of
``embedding_request(round, generator)`` with the model in eval mode and calls ``refresh_embeddings``; between
refreshes ``observe`` keeps the L2-normalised outputs of every trained item (codes of a hashing model,
descriptors of a real-valued one) in the same memory bank.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, TrainingProtocol
from hashkit.testing import ComponentExample

QUERY, POSITIVE, NEGATIVE = 0, 1, 2


@attrs.frozen
class TuplesConfig:
    #: rounds (one mining pass each)
    rounds: int = attrs.field(default=10, validator=attrs.validators.ge(1))
    #: tuples built per round (cnnimageretrieval: 2000); capped by the number of usable anchors
    queries_per_round: int = attrs.field(default=2000, validator=attrs.validators.ge(1))
    #: hard negatives per tuple (cnnimageretrieval: 5)
    negatives: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    #: no two negatives of a tuple share a label
    distinct_negatives: bool = True
    #: candidate negatives considered per anchor, most similar first (0 = all)
    pool_size: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    #: random training items per round offered by embedding_request() for a fresh embedding refresh
    refresh_size: int = attrs.field(default=20000, validator=attrs.validators.ge(1))


class Tuples(TrainingProtocol):
    database = "encoded"
    provides: tuple[str, ...] = ("tuple_id", "tuple_role")

    def __init__(self, cfg: TuplesConfig):
        self.cfg = cfg
        self.num_rounds = cfg.rounds
        self.epochs_per_round = 1
        self.tuple_size = 2 + cfg.negatives
        self.order = torch.zeros(0, dtype=torch.int64)
        self.cursor = 0
        self.bank: Tensor | None = None
        self.bank_valid: Tensor | None = None

    # -- setup and mining -------------------------------------------------------------------------
    def setup(self, train_labels: Tensor, generator: torch.Generator) -> None:
        super().setup(train_labels, generator)
        self.labels = (train_labels > 0).float().cpu()
        # an item shares a label with another one iff one of its labels is held by at least two items
        self.has_positive = (self.labels * (self.labels.sum(dim=0) >= 2)).any(dim=1)
        if not bool(self.has_positive.any()):
            raise ContractError("tuples: no training item shares a label with another one, so no positive exists")

    def embedding_request(self, round_index: int, generator: torch.Generator) -> Tensor:
        """Training indices whose current-model embeddings the trainer refreshes before ``begin_round``."""
        perm = torch.randperm(self.num_train, generator=generator)
        return perm[: self.cfg.refresh_size]

    def refresh_embeddings(self, indices: Tensor, embeddings: Tensor) -> None:
        """Store current-model embeddings ``(n, D)`` of training ``indices`` ``(n,)`` in the bank."""
        self.observe(indices, embeddings)

    def _negatives(self, q: int, generator: torch.Generator) -> list[int]:
        k = self.cfg.negatives
        candidates = torch.nonzero((self.labels @ self.labels[q]) == 0).flatten()
        if len(candidates) == 0:
            raise ContractError(f"tuples: training item {q} shares a label with every item; no negative exists")
        usable = self.bank is not None and bool(self.bank_valid[q])
        if usable:
            seen = candidates[self.bank_valid[candidates]]
            usable = len(seen) > 0
        if usable:
            sims = self.bank[seen] @ self.bank[q]
            ranked = seen[torch.argsort(sims, descending=True, stable=True)]
        else:
            ranked = candidates[torch.randperm(len(candidates), generator=generator)]
        if self.cfg.pool_size:
            ranked = ranked[: self.cfg.pool_size]
        chosen: list[int] = []
        used = torch.zeros(self.labels.shape[1])
        for c in ranked.tolist():
            if self.cfg.distinct_negatives and bool((self.labels[c] * used).any()):
                continue
            chosen.append(c)
            used = torch.maximum(used, self.labels[c])
            if len(chosen) == k:
                break
        while len(chosen) < k:  # too few distinct candidates: repeat from the ranking
            chosen.append(int(ranked[len(chosen) % len(ranked)]))
        return chosen

    def begin_round(self, round_index: int, generator: torch.Generator) -> Tensor:
        anchors = torch.nonzero(self.has_positive).flatten()
        anchors = anchors[torch.randperm(len(anchors), generator=generator)][: self.cfg.queries_per_round]
        tuples = []
        for q in anchors.tolist():
            pos = torch.nonzero((self.labels @ self.labels[q]) > 0).flatten()
            pos = pos[pos != q]
            p = int(pos[torch.randint(len(pos), (1,), generator=generator)])
            tuples.append([q, p, *self._negatives(q, generator)])
        self.order = torch.tensor(tuples, dtype=torch.int64).reshape(-1)
        self.cursor = 0
        return self.order.clone()

    # -- per batch ------------------------------------------------------------------------------
    def _locate(self, indices: Tensor) -> int:
        b, t = len(indices), self.tuple_size
        if b % t:
            raise ContractError(f"tuples: a batch of {b} items does not hold whole tuples of {t}; set "
                                f"data.batch_size to a multiple of {t} and data.sampler.name = 'sequential'")
        idx = indices.cpu()
        starts = [self.cursor] + list(range(0, len(self.order) - b + 1, t))
        for s in starts:
            if s % t == 0 and s + b <= len(self.order) and torch.equal(self.order[s:s + b], idx):
                return s
        raise ContractError("tuples: the batch is not a run of the round's tuples; the trainer must keep the "
                            "protocol's order (data.sampler.name = 'sequential')")

    def batch_state(self, indices: Tensor) -> dict[str, Tensor]:
        start = self._locate(indices)
        self.cursor = start + len(indices)
        pos = torch.arange(len(indices), device=indices.device)
        within = pos % self.tuple_size
        role = torch.where(within == 0, QUERY, torch.where(within == 1, POSITIVE, NEGATIVE))
        return {"tuple_id": pos // self.tuple_size, "tuple_role": role.to(torch.int64)}

    def observe(self, indices: Tensor, codes: Tensor) -> None:
        emb = F.normalize(codes.detach().float().cpu(), dim=1)
        if self.bank is None or self.bank.shape[1] != emb.shape[1]:
            self.bank = torch.zeros(self.num_train, emb.shape[1])
            self.bank_valid = torch.zeros(self.num_train, dtype=torch.bool)
        idx = indices.cpu().long()
        self.bank[idx] = emb
        self.bank_valid[idx] = True

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Tensor]:
        state = {"order": self.order.clone(), "cursor": torch.tensor(self.cursor)}
        if self.bank is not None:
            state["bank"] = self.bank.clone()
            state["bank_valid"] = self.bank_valid.clone()
        return state

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.order = state["order"].clone().long()
        self.cursor = int(state["cursor"])
        if "bank" in state:
            self.bank = state["bank"].clone().float()
            self.bank_valid = state["bank_valid"].clone().bool()


def build_tuples(cfg: TuplesConfig, ctx: BuildContext) -> Tuples:
    """Tuples (query, positive, hard negatives mined from a memory bank of the model's outputs)."""
    return Tuples(cfg)


def components(register):
    register("training_protocol", "tuples", build_tuples, config=TuplesConfig,
             example=lambda: ComponentExample(config={"negatives": 2, "queries_per_round": 4, "rounds": 2}))
