"""``sampled_rounds``: DSH_Analysis's outer loop (ADSH's without learned codes); the database is encoded.

Each round draws ``m = num_samples`` training items uniformly without replacement (``randperm(n)[:m]`` from
the round's generator, clamped to the training-set size) and runs ``epochs`` epochs over them (shuffled by
the trainer's sampler). Nothing is learned besides the network: the database is encoded (sign of the codes,
eval mode, evaluation transform). This is how aassxun/DSH_Analysis @ 44271bc trains its non-ADSH methods:
40 rounds x 30 epochs over 2,000 (4,000 for VegFru and NABirds) sampled images, batch 16 — DPAH, DCDH, the
generic baselines DSH, HashNet, CSQ, OrthoHash, MDSH, PSLDH, HyP², and, with label-derived targets, FISH and
CHN (``proxy_codes`` extends this protocol).

The sample of a round is a pure function of the round's generator (``begin_round`` always redraws it).
Per batch the losses receive ``{"position": (b,) int64}``, the batch items' positions in the round's sample:
DSH_Analysis's dataloader index, which its DSH, HashNet and MDSH memory banks are keyed by (a loss with
``key = "position"`` and ``rows = num_samples``, docs/methods/generic.md). ``state_dict`` keeps the sample
and its round, so a run resumed in the middle of a round (the trainer restores the round's order, not calling
``begin_round`` again) hands out the same positions.
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, TrainingProtocol


@attrs.frozen
class SampledRoundsConfig:
    #: outer iterations (DSH_Analysis max_iter: 40 fine-grained, 50 CIFAR / ImageNet / multi-label)
    rounds: int = attrs.field(default=40, validator=attrs.validators.ge(1))
    #: epochs over the round's sample (max_epoch: 30 fine-grained, 3 CIFAR / multi-label, 1 ImageNet)
    epochs: int = attrs.field(default=30, validator=attrs.validators.ge(1))
    #: m, items drawn per round (2000; 4000 for VegFru and NABirds); clamped to the training-set size
    num_samples: int = attrs.field(default=2000, validator=attrs.validators.ge(1))


class SampledRounds(TrainingProtocol):
    """Rounds over a fresh uniform sample of the training split; database encoded; batch positions provided."""

    database = "encoded"
    provides: tuple[str, ...] = ("position",)

    def __init__(self, cfg: SampledRoundsConfig):
        self.cfg = cfg
        self.num_rounds, self.epochs_per_round = cfg.rounds, cfg.epochs
        self.sample_index: Tensor | None = None
        self.round = -1
        self._positions: Tensor | None = None
        self.device = torch.device("cpu")

    def setup(self, train_labels: Tensor, generator: torch.Generator) -> None:
        super().setup(train_labels, generator)
        self.num_samples = min(self.cfg.num_samples, self.num_train)

    def begin_round(self, round_index: int, generator: torch.Generator) -> Tensor:
        self.sample_index = torch.randperm(self.num_train, generator=generator)[: self.num_samples]
        self.round = round_index
        self._positions = None
        return self.sample_index.clone()

    def batch_state(self, indices: Tensor) -> dict[str, Tensor]:
        if self.sample_index is None:
            raise ContractError("sampled_rounds protocol: begin_round must run before batch_state")
        if self._positions is None:  # after begin_round, or after load_state_dict on resume
            pos = torch.full((self.num_train,), -1, dtype=torch.long)
            pos[self.sample_index] = torch.arange(len(self.sample_index))
            self._positions = pos.to(self.device)
        position = self._positions[indices.to(self.device)]
        if (position < 0).any():
            raise ContractError("sampled_rounds protocol: the batch holds items outside this round's sample")
        return {"position": position.to(indices.device)}

    def state_dict(self) -> dict[str, Tensor]:
        if self.sample_index is None:
            return {}
        return {"sample_index": self.sample_index.clone(), "round": torch.tensor(self.round, dtype=torch.long)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if state:
            self.sample_index = state["sample_index"].long().cpu().clone()
            self.round = int(state["round"])
            self._positions = None

    def to(self, device: torch.device | str) -> "SampledRounds":
        self.device = torch.device(device)
        self._positions = None
        return self


def build_sampled_rounds(cfg: SampledRoundsConfig, ctx: BuildContext) -> SampledRounds:
    """Rounds of epochs over m items sampled per round (DSH_Analysis); database encoded by the network."""
    return SampledRounds(cfg)


def components(register):
    register("training_protocol", "sampled_rounds", build_sampled_rounds, config=SampledRoundsConfig)
