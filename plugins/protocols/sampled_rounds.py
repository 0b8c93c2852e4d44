"""``sampled_rounds``: ADSH's outer loop without learned codes; the database is encoded by the network.

Each round draws ``m = num_samples`` training items uniformly without replacement (``randperm(n)[:m]`` from
the round's generator) and runs ``epochs`` epochs over them (shuffled by the trainer's sampler). Nothing
is learned besides the network: the database is encoded (sign of the codes, eval mode, evaluation
transform). This is how aassxun/DSH_Analysis @ 44271bc trains its non-ADSH methods (DPAH, DCDH and, with
label-derived targets, FISH and CHN — see ``proxy_codes``): 40 rounds x 30 epochs over 2,000 (4,000 for
VegFru and NABirds) sampled images, batch 16.

The sample of a round is a pure function of the round's generator, so a resumed run redraws it; the state
dict is empty. ``num_samples`` larger than the training split takes every item.
"""

from __future__ import annotations

import attrs
import torch
from torch import Tensor

from hashkit.interfaces import BuildContext, TrainingProtocol


@attrs.frozen
class SampledRoundsConfig:
    #: outer iterations (DSH_Analysis max_iter: 40 for the fine-grained sets)
    rounds: int = attrs.field(default=40, validator=attrs.validators.ge(1))
    #: epochs over the round's sample (DSH_Analysis max_epoch: 30)
    epochs: int = attrs.field(default=30, validator=attrs.validators.ge(1))
    #: m, items drawn per round (2000; 4000 for VegFru and NABirds); clamped to the training-set size
    num_samples: int = attrs.field(default=2000, validator=attrs.validators.ge(1))


class SampledRounds(TrainingProtocol):
    """Rounds over a fresh uniform sample of the training split; database encoded."""

    database = "encoded"
    provides: tuple[str, ...] = ()

    def __init__(self, cfg: SampledRoundsConfig):
        self.cfg = cfg
        self.num_rounds = cfg.rounds
        self.epochs_per_round = cfg.epochs

    def setup(self, train_labels: Tensor, generator: torch.Generator) -> None:
        super().setup(train_labels, generator)
        self.num_samples = min(self.cfg.num_samples, self.num_train)

    def begin_round(self, round_index: int, generator: torch.Generator) -> Tensor:
        return torch.randperm(self.num_train, generator=generator)[: self.num_samples]


def build_sampled_rounds(cfg: SampledRoundsConfig, ctx: BuildContext) -> SampledRounds:
    """Rounds of epochs over m items sampled per round (DSH_Analysis); database encoded by the network."""
    return SampledRounds(cfg)


def components(register):
    register("training_protocol", "sampled_rounds", build_sampled_rounds, config=SampledRoundsConfig)
