"""``pointwise``: plain epochs over the training split; the database is encoded by the network.

One round = ``epochs`` epochs over every training item (shuffled by the trainer's sampler). Losses get no
protocol state. GDF-Net, FDH-MFE and DAGF train this way.
"""

from __future__ import annotations

import attrs

from hashkit.interfaces import BuildContext, TrainingProtocol


@attrs.frozen
class PointwiseConfig:
    epochs: int = attrs.field(default=1, validator=attrs.validators.ge(1))


class Pointwise(TrainingProtocol):
    database = "encoded"
    provides: tuple[str, ...] = ()

    def __init__(self, cfg: PointwiseConfig):
        self.num_rounds = cfg.epochs
        self.epochs_per_round = 1


def build_pointwise(cfg: PointwiseConfig, ctx: BuildContext) -> Pointwise:
    """Epochs over the training split; database encoded by the network."""
    return Pointwise(cfg)


def components(register):
    register("training_protocol", "pointwise", build_pointwise, config=PointwiseConfig)
