"""Per-epoch batch orders: :func:`epoch_batches` for the recipe's ``[data.sampler]``.

The result depends only on the arguments and the generator's state, so a resumed run that restores the
generator (or re-seeds it for the epoch) gets the same batches and can skip the ones already done.

- ``random``: a permutation of ``indices`` cut into batches of ``batch_size``.
- ``sequential``: ``indices`` in the given order, cut into batches.
- ``pk``: class-balanced batches of ``P`` classes x ``K`` images (``sampler.p``, ``sampler.k``) for triplet-style
  losses; ``batch_size`` must equal ``P * K``.

P x K details [inferred design]
-------------------------------
- Multi-label aware: each epoch, every image is assigned to *one* of its labels, chosen uniformly with the
  generator, so an image appears in at most one group per epoch (apart from padding, below). Images without
  any label are left out of P x K epochs.
- Each class's images are shuffled and cut into groups of ``K``. A class with fewer than ``K`` images (or
  a last group that is short) is **padded by repeating its own images**, drawn at random with replacement
  from that class, so every group holds exactly ``K`` images of one class.
- Batches take ``P`` groups from ``P`` distinct classes, preferring the classes with the most groups left
  (random order among equals) so that classes run out together. When fewer than ``P`` classes have groups
  left, the last batches have fewer classes (``drop_last`` drops every batch smaller than ``P * K``).
- An epoch therefore covers every labelled image once, plus the padding.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hashkit.errors import RecipeError
from hashkit.recipe.schema import SamplerSection


def _chunks(order: Tensor, batch_size: int, drop_last: bool) -> list[Tensor]:
    batches = list(torch.split(order, batch_size))
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    return [b.clone() for b in batches]


def _as_multi_hot(labels: Tensor) -> Tensor:
    if labels.ndim == 1:
        return torch.nn.functional.one_hot(labels.long(), int(labels.max()) + 1 if len(labels) else 1) > 0
    if labels.ndim == 2:
        return labels > 0
    raise ValueError(f"labels must be (n,) class ids or (n, C) multi-hot, got shape {tuple(labels.shape)}")


def epoch_batches(indices: Tensor, labels: Tensor, batch_size: int, sampler: SamplerSection,
                  generator: torch.Generator, drop_last: bool) -> list[Tensor]:
    """One epoch of batches over ``indices``.

    ``indices``: int64 ``(n,)`` dataset indices to draw from (e.g. the training split, or the ADSH round's
    subset); ``labels``: the targets of exactly those images, ``(n, C)`` multi-hot or ``(n,)`` class ids (only
    ``pk`` reads them). Returns int64 tensors of dataset indices (values taken from ``indices``).
    """
    indices = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
    if batch_size <= 0:
        raise RecipeError(f"batch size must be > 0, found {batch_size}")
    if sampler.name == "sequential":
        return _chunks(indices, batch_size, drop_last)
    if sampler.name == "random":
        return _chunks(indices[torch.randperm(len(indices), generator=generator)], batch_size, drop_last)
    if sampler.name == "pk":
        if batch_size != sampler.p * sampler.k:
            raise RecipeError(f"data.batch_size = {batch_size} but the pk sampler makes batches of "
                              f"p x k = {sampler.p} x {sampler.k} = {sampler.p * sampler.k}; set them to agree")
        if len(labels) != len(indices):
            raise ValueError(f"epoch_batches: {len(indices)} indices but {len(labels)} labels")
        return _pk_batches(indices, _as_multi_hot(labels), sampler.p, sampler.k, generator, drop_last)
    raise RecipeError(f"unknown sampler {sampler.name!r}; expected random, sequential or pk")


def _pk_batches(indices: Tensor, multi_hot: Tensor, p: int, k: int, generator: torch.Generator,
                drop_last: bool) -> list[Tensor]:
    n, num_classes = multi_hot.shape
    # one label per image for this epoch: a uniformly random one among its labels
    scores = torch.rand(n, num_classes, generator=generator).masked_fill(~multi_hot, -1.0)
    labelled = multi_hot.any(dim=1)
    assigned = scores.argmax(dim=1)
    groups: dict[int, list[Tensor]] = {}
    for c in range(num_classes):
        members = torch.nonzero(labelled & (assigned == c)).flatten()
        if len(members) == 0:
            continue
        members = members[torch.randperm(len(members), generator=generator)]
        class_groups = list(torch.split(members, k))
        short = k - len(class_groups[-1])
        if short:
            pad = members[torch.randint(len(members), (short,), generator=generator)]
            class_groups[-1] = torch.cat([class_groups[-1], pad])
        groups[c] = class_groups
    batches: list[Tensor] = []
    while groups:
        classes = list(groups)
        tie_break = torch.randperm(len(classes), generator=generator).tolist()
        ranked = sorted(range(len(classes)), key=lambda i: (-len(groups[classes[i]]), tie_break[i]))
        chosen = [classes[i] for i in ranked[:p]]
        batch = torch.cat([groups[c].pop() for c in chosen])
        for c in chosen:
            if not groups[c]:
                del groups[c]
        if len(batch) < p * k and drop_last:
            continue
        batches.append(indices[batch])
    return batches
