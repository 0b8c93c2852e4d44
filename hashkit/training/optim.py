"""The optimiser from ``[optimizer]``: parameter groups by name match, and ``train.freeze``.

Parameter groups: each ``[[optimizer.param_groups]]`` entry takes the parameters whose qualified name
contains ``match`` (first matching entry wins, in recipe order) and gives them ``lr * lr_mult`` and
optionally their own ``weight_decay``; everything else forms the default group. Frozen parameters
(``requires_grad = False`` after :func:`freeze`) are left out. Each group remembers its base learning rate
as ``"base_lr"`` so the schedule can set ``lr = base_lr * factor``.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from hashkit.errors import RecipeError
from hashkit.recipe.schema import OptimizerSection


def freeze(module: nn.Module, patterns: Iterable[str]) -> list[str]:
    """Set ``requires_grad = False`` on parameters whose name contains any pattern; returns their names."""
    patterns = tuple(patterns)
    if not patterns:
        return []
    frozen = []
    for name, p in module.named_parameters():
        if any(pat in name for pat in patterns):
            p.requires_grad_(False)
            frozen.append(name)
    unmatched = [pat for pat in patterns if not any(pat in n for n in frozen)]
    if unmatched:
        raise RecipeError(f"no parameter name contains {unmatched[0]!r}", key="train.freeze")
    return frozen


def param_groups(named: Iterable[tuple[str, nn.Parameter]], section: OptimizerSection) -> list[dict]:
    """Split trainable parameters into the recipe's groups (default group first)."""
    default: list[nn.Parameter] = []
    grouped: list[list[nn.Parameter]] = [[] for _ in section.param_groups]
    seen: set[int] = set()
    for name, p in named:
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        for i, g in enumerate(section.param_groups):
            if g.match in name:
                grouped[i].append(p)
                break
        else:
            default.append(p)
    groups = []
    if default:
        groups.append({"params": default, "base_lr": section.lr, "weight_decay": section.weight_decay,
                       "name": "default"})
    for i, (g, params) in enumerate(zip(section.param_groups, grouped)):
        if not params:
            raise RecipeError(f"no trainable parameter name contains {g.match!r}",
                              key=f"optimizer.param_groups[{i}].match")
        wd = section.weight_decay if g.weight_decay is None else g.weight_decay
        groups.append({"params": params, "base_lr": section.lr * g.lr_mult, "weight_decay": wd, "name": g.match})
    if not groups:
        raise RecipeError("the model has no trainable parameters (check train.freeze)", key="train.freeze")
    for g in groups:
        g["lr"] = g["base_lr"]
    return groups


def build_optimizer(named: Iterable[tuple[str, nn.Parameter]], section: OptimizerSection) -> torch.optim.Optimizer:
    """The recipe's optimiser over ``named`` parameters (``model.named_parameters()`` and loss parameters)."""
    groups = param_groups(named, section)
    if section.name == "sgd":
        return torch.optim.SGD(groups, lr=section.lr, momentum=section.momentum, nesterov=section.nesterov,
                               weight_decay=section.weight_decay)
    if section.name == "adam":
        return torch.optim.Adam(groups, lr=section.lr, betas=tuple(section.betas), weight_decay=section.weight_decay)
    if section.name == "adamw":
        return torch.optim.AdamW(groups, lr=section.lr, betas=tuple(section.betas), weight_decay=section.weight_decay)
    if section.name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=section.lr, momentum=section.momentum,
                                   weight_decay=section.weight_decay)
    raise RecipeError(f"unknown optimizer {section.name!r}", key="optimizer.name")


def set_learning_rate(optimizer: torch.optim.Optimizer, factor: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = g["base_lr"] * factor
