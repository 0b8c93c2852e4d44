"""``sampled``: DSH_Analysis's outer loop for network-encoded methods: each round draws ``num_samples`` random
training items and runs ``epochs`` epochs over them; the database is encoded by the network.

Per batch the losses receive ``{"position": (b,) int64}``, the batch items' positions in the round's sample
(DSH_Analysis's dataloader index, which its DSH, HashNet and MDSH memory banks are keyed by: a loss with
``key = "position"`` and ``rows = num_samples``). The sample is ``randperm(n)[:num_samples]`` from the round's
generator (clamped to the training-set size); ``state_dict`` keeps it with its round, so a resumed run
continues on the same sample.
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, TrainingProtocol


@attrs.frozen
class SampledConfig:
    #: outer iterations (DSH_Analysis max_iter: 40 fine-grained, 50 CIFAR / ImageNet / multi-label)
    rounds: int = attrs.field(default=40, validator=attrs.validators.ge(1))
    #: epochs over the sample per round (max_epoch: 30 fine-grained, 3 CIFAR / multi-label, 1 ImageNet)
    epochs: int = attrs.field(default=30, validator=attrs.validators.ge(1))
    #: items drawn per round (2000; 4000 for VegFru and NABirds)
    num_samples: int = attrs.field(default=2000, validator=attrs.validators.ge(1))


class Sampled(TrainingProtocol):
    database = "encoded"
    provides: tuple[str, ...] = ("position",)

    def __init__(self, cfg: SampledConfig):
        self.cfg = cfg
        self.num_rounds, self.epochs_per_round = cfg.rounds, cfg.epochs
        self.sample_index: Tensor | None = None
        self.round = -1
        self._positions: Tensor | None = None
        self.device = torch.device("cpu")

    def setup(self, train_labels: Tensor, generator: torch.Generator) -> None:
        self.num_train = int(train_labels.shape[0])
        self.num_samples = min(self.cfg.num_samples, self.num_train)

    def begin_round(self, round_index: int, generator: torch.Generator) -> Tensor:
        if round_index != self.round or self.sample_index is None:
            self.sample_index = torch.randperm(self.num_train, generator=generator)[: self.num_samples]
            self.round = round_index
        pos = torch.full((self.num_train,), -1, dtype=torch.long)
        pos[self.sample_index] = torch.arange(len(self.sample_index))
        self._positions = pos.to(self.device)
        return self.sample_index.clone()

    def batch_state(self, indices: Tensor) -> dict[str, Tensor]:
        if self._positions is None:
            raise ContractError("sampled protocol: begin_round must run before batch_state")
        position = self._positions[indices.to(self.device)]
        if (position < 0).any():
            raise ContractError("sampled protocol: the batch holds items outside this round's sample")
        return {"position": position.to(indices.device)}

    def state_dict(self) -> dict[str, Tensor]:
        if self.sample_index is None:
            return {}
        return {"sample_index": self.sample_index.clone(), "round": torch.tensor(self.round, dtype=torch.long)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if state:
            self.sample_index = state["sample_index"].long().cpu().clone()
            self.round = int(state["round"])

    def to(self, device: torch.device | str) -> "Sampled":
        self.device = torch.device(device)
        if self._positions is not None:
            self._positions = self._positions.to(self.device)
        return self


def build_sampled(cfg: SampledConfig, ctx: BuildContext) -> Sampled:
    """Rounds of epochs over a fresh random sample of the training set (DSH_Analysis); database encoded."""
    return Sampled(cfg)


def components(register):
    register("training_protocol", "sampled", build_sampled, config=SampledConfig)
