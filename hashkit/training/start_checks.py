"""Recipe values that are accepted but would not act as written, found once the data and the protocol exist.

Components report such values with ``warnings.warn(message, hashkit.errors.RecipeWarning)`` when they are
built (ADSH: ``num_samples`` above the training-set size is clamped); the core adds the schedule checks
(``milestones`` beyond the end of training or a ``warmup`` as long as it, e.g. inherited from a longer parent recipe).
``hashkit recipe validate`` prints them when the dataset can be loaded (:mod:`hashkit.preflight`); a run prints them at its start and
writes them to the first lines of ``L{bits}/metrics.jsonl`` as ``{"event": "warning", "message": ...}``.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Iterator

from hashkit.errors import RecipeWarning
from hashkit.recipe.schema import Recipe


@contextlib.contextmanager
def recording() -> Iterator[list[str]]:
    """Collect the :class:`RecipeWarning` messages raised inside (other warnings pass through)."""
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RecipeWarning)
        yield messages
    for w in caught:
        if issubclass(w.category, RecipeWarning):
            messages.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def schedule_warnings(recipe: Recipe, protocol, num_train: int) -> list[str]:
    """Schedule values that never take effect in a run of ``protocol``'s length."""
    sched = recipe.schedule
    rounds, epochs = int(protocol.num_rounds), int(protocol.epochs_per_round)
    per_round = min(int(getattr(protocol, "num_samples", num_train) or num_train), num_train)
    steps = (per_round // recipe.data.batch_size if recipe.data.drop_last
             else math.ceil(per_round / recipe.data.batch_size))
    total = {"round": rounds, "epoch": rounds * epochs, "step": rounds * epochs * max(steps, 1)}[sched.unit]
    out = []
    if sched.name == "multistep":
        late = [m for m in sched.milestones if m > total]
        if late:
            out.append(f"schedule.milestones {late} lie beyond the end of training ({total} {sched.unit}s: "
                       f"{rounds} rounds x {epochs} epochs{' x ' + str(steps) + ' steps' if sched.unit == 'step' else ''}"
                       "), so the learning rate never decays there")
    if sched.warmup >= total:
        out.append(f"schedule.warmup = {sched.warmup} {sched.unit}s covers the whole run ({total} {sched.unit}s)")
    return out

