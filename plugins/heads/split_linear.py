"""``split_linear``: one bias-free linear projection per descriptor, concatenated, then tanh (SEMICON's
``W_G``, ``W_L1..3``; aassxun/SEMICON @ 885cbfe0).

``logits = [f_global W_G^T ; f_local1 W_L1^T ; ... ]`` in descriptor order, ``codes = tanh(logits)``. The
first descriptor gets the global share of the L bits, every other descriptor an equal local share:

- ``split = "official"`` (SEMICON's code, 3 local descriptors): global ``L // 2`` (``L // 2 + 1`` when
  L = 32), local ``L // 6``; a code length whose split does not add up to L (e.g. 16, 64, where the
  official code silently returns a code of the wrong length) is an error. 12/24/32/48 give 6/2/2/2,
  12/4/4/4, 17/5/5/5 and 24/8/8/8.
- ``split = "general"`` ([inferred design]) for K local descriptors: local ``L // (2K)``, global
  ``L - K * (L // (2K))``. With K = 3 it equals every official split and aassxun/DSH_Analysis' 16 -> 10/2/2/2
  and 64 -> 34/10/10/10; L < 2K is an error.

A single descriptor gets all L bits. Parameters are named ``W_G``, ``W_L1``, ``W_L2``, ... (the official
names) with shape (bits, D) and ``kaiming_uniform_(a=sqrt(5))`` init (the nn.Linear default).

Tensor contract: ``{name: (B, D_name)}`` -> ``HeadOutput(logits (B, L), codes = tanh(logits) (B, L))``; no
classifier.
"""

from __future__ import annotations

import math
from typing import Literal

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, HashHead, HeadOutput


@attrs.frozen
class SplitLinearConfig:
    #: how the L bits are split between the global and the local descriptors (see the module docstring)
    split: Literal["official", "general"] = "official"


def split_bits(code_length: int, num_parts: int, rule: str = "official") -> list[int]:
    """Bits per descriptor ``[global, local1, ...]`` for ``num_parts`` descriptors; ContractError if impossible."""
    if num_parts == 1:
        return [code_length]
    locals_ = num_parts - 1
    if rule == "official":
        if locals_ != 3:
            raise ContractError(f"split_linear: split = \"official\" is defined for 3 local descriptors, "
                                f"found {locals_}; use split = \"general\"")
        glob = code_length // 2 + (1 if code_length == 32 else 0)
        local = code_length // 6
        if glob + 3 * local != code_length:
            raise ContractError(
                f"split_linear: the official split of {code_length} bits gives {glob} + 3 x {local} = "
                f"{glob + 3 * local} bits (official code lengths: 12, 24, 32, 48); use split = \"general\""
            )
        return [glob] + [local] * 3
    if rule == "general":
        if code_length < 2 * locals_:
            raise ContractError(f"split_linear: split = \"general\" needs at least {2 * locals_} bits for "
                                f"{locals_} local descriptors, found {code_length}")
        local = code_length // (2 * locals_)
        return [code_length - locals_ * local] + [local] * locals_
    raise ContractError(f"split_linear: unknown split rule {rule!r}")


class SplitLinear(HashHead):
    num_classes = 0

    def __init__(self, cfg: SplitLinearConfig, descriptor_dims: dict[str, int], code_length: int):
        super().__init__()
        self.cfg = cfg
        self.descriptor_dims = dict(descriptor_dims)
        self.code_length = code_length
        self.bits = split_bits(code_length, len(self.descriptor_dims), cfg.split)
        self.param_names = ["W_G"] + [f"W_L{k}" for k in range(1, len(self.bits))]
        for pname, bits, dim in zip(self.param_names, self.bits, self.descriptor_dims.values()):
            weight = nn.Parameter(torch.empty(bits, dim))
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
            self.register_parameter(pname, weight)

    def forward(self, descriptors: dict[str, Tensor]) -> HeadOutput:
        logits = torch.cat([F.linear(descriptors[name], getattr(self, pname))
                            for name, pname in zip(self.descriptor_dims, self.param_names)], dim=1)
        return HeadOutput(logits=logits, codes=torch.tanh(logits))


def build_split_linear(cfg: SplitLinearConfig, ctx: BuildContext) -> SplitLinear:
    """Bias-free linear per descriptor with SEMICON's bit split [global, local1, ...], then tanh."""
    if not ctx.code_length:
        raise ContractError("split_linear needs a code length (recipe code_lengths)")
    if not ctx.descriptor_dims:
        raise ContractError("split_linear needs the aggregation's descriptor dims")
    return SplitLinear(cfg, ctx.descriptor_dims, ctx.code_length)


def _example():
    from hashkit.testing import ComponentExample

    g = torch.Generator().manual_seed(0)
    dims = {"global": 8, "local1": 8, "local2": 8, "local3": 8}
    return ComponentExample(ctx=BuildContext(code_length=12, descriptor_dims=dims),
                            inputs=({k: torch.randn(2, d, generator=g) for k, d in dims.items()},))


def components(register):
    register("hash_head", "split_linear", build_split_linear, config=SplitLinearConfig, example=_example)
