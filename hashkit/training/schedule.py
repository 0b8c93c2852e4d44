"""Learning-rate schedules from ``[schedule]``, as a pure function of the training position.

The factor multiplying each parameter group's base learning rate is computed from the number of completed
*units* (``round`` = outer iteration, ``epoch``, or optimiser ``step``), so a resumed run needs no scheduler
state: the position counters in the checkpoint determine the learning rate.

- ``constant``: 1.
- ``multistep``: ``gamma ** (number of milestones <= t)`` (PyTorch ``MultiStepLR`` stepped once per unit,
  which is how SEMICON's official code steps it once per outer iteration).
- ``step``: ``gamma ** (t // step_size)``.
- ``exponential``: ``gamma ** t`` (PyTorch ``ExponentialLR`` stepped once per unit).
- ``cosine``: ``min_ratio + (1 - min_ratio) * (1 + cos(pi * t' / T')) / 2`` over the units after warmup,
  where ``min_ratio = min_lr / lr``.
- ``warmup = W > 0``: linear ramp ``(t + 1) / W`` for ``t < W`` (then the schedule above, with ``t`` counted
  from the start for ``multistep``/``step``/``exponential`` and from the end of warmup for ``cosine``).
"""

from __future__ import annotations

import math

from hashkit.recipe.schema import ScheduleSection


def lr_factor(section: ScheduleSection, t: int, total: int, base_lr: float) -> float:
    """Multiplier of the base learning rate after ``t`` completed units out of ``total``."""
    if section.warmup > 0 and t < section.warmup:
        return (t + 1) / section.warmup
    if section.name == "constant":
        return 1.0
    if section.name == "multistep":
        return section.gamma ** sum(1 for m in section.milestones if m <= t)
    if section.name == "step":
        return section.gamma ** (t // max(section.step_size, 1))
    if section.name == "exponential":
        return section.gamma ** t
    if section.name == "cosine":
        span = max(total - section.warmup, 1)
        progress = min(max(t - section.warmup, 0) / span, 1.0)
        min_ratio = section.min_lr / base_lr if base_lr > 0 else 0.0
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule {section.name!r}")


def completed_units(section: ScheduleSection, *, round_index: int, epoch_index: int, epochs_per_round: int,
                    step: int) -> int:
    """Units completed before the current optimiser step, for the schedule's ``unit``."""
    if section.unit == "round":
        return round_index
    if section.unit == "epoch":
        return round_index * epochs_per_round + epoch_index
    return step
