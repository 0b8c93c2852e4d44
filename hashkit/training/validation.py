"""The validation split for ``train.selection = "best_val"``, carved from the training split.

Per class (an item's class is its first label; multi-label items count once), ``round(val_fraction * n_c)``
items are drawn without replacement with a generator seeded from the recipe seed (independent of the code
length), keeping at least one training item per class and taking none from a class with a single item.
The training split loses these items: the model, the protocol (ADSH's learned database) and the selection
database never see them [inferred design]. For a seen/unseen split the full-column training targets
(``open_set.train_seen``) lose the same rows.
"""

from __future__ import annotations

import attrs
import torch

from hashkit.errors import RecipeError
from hashkit.interfaces import RetrievalData, Split
from hashkit.training.seeding import generator


def subset(split: Split, keep: torch.Tensor) -> Split:
    keep_list = keep.tolist()
    return Split(items=[split.items[i] for i in keep_list], targets=split.targets[keep], reader=split.reader)


def carve_validation(data: RetrievalData, fraction: float, seed: int) -> tuple[RetrievalData, Split]:
    """``(data with the reduced train split, validation split)``."""
    if not 0.0 < fraction < 1.0:
        raise RecipeError(f"val_fraction must be in (0, 1) for selection = 'best_val', found {fraction}",
                          key="train.val_fraction")
    train = data.split("train")
    labels = train.targets
    first = torch.where(labels.sum(dim=1) > 0, labels.argmax(dim=1), torch.full((len(train),), -1))
    g = generator(seed, "validation-split")
    val_parts = []
    for c in torch.unique(first).tolist():
        members = torch.nonzero(first == c).flatten()
        n_val = min(int(round(fraction * len(members))), len(members) - 1)
        if n_val <= 0:
            continue
        chosen = members[torch.randperm(len(members), generator=g)[:n_val]]
        val_parts.append(chosen)
    if not val_parts:
        raise RecipeError(f"val_fraction = {fraction} leaves no validation items on {data.name!r} "
                          f"({len(train)} training items)", key="train.val_fraction")
    val_idx = torch.sort(torch.cat(val_parts)).values
    mask = torch.ones(len(train), dtype=torch.bool)
    mask[val_idx] = False
    train_idx = torch.nonzero(mask).flatten()
    reduced = attrs.evolve(data, splits={**data.splits, "train": subset(train, train_idx)})
    if data.open_set is not None:
        reduced = attrs.evolve(reduced, open_set=attrs.evolve(
            data.open_set, train_seen=subset(data.open_set.train_seen, train_idx)))
    return reduced, subset(train, val_idx)
