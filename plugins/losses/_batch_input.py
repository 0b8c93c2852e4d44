"""Config, sizes and input reading shared by the generic losses (DTSH, LCDSH, QSMIH, DSHSD, GreedyHash, DPN, ...)."""

from __future__ import annotations

import attrs
from torch import Tensor

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, LossInputs
from hashkit_plugins.losses._code_input import CodeInput, code_tensor, label_tensor


@attrs.frozen
class RawInputConfig:
    #: model output the loss reads: raw "logits" (the reference networks have no activation) or "codes"
    input: CodeInput = "logits"


def read_batch(inputs: LossInputs, source: CodeInput, loss_name: str) -> tuple[Tensor, Tensor]:
    """``(u (b, L), y (b, C))`` in the compute dtype (float32, or float64 inputs kept)."""
    u = code_tensor(inputs, source, loss_name)
    return u, label_tensor(inputs, u, loss_name)


def code_and_class_sizes(ctx: BuildContext, loss_name: str) -> tuple[int, int]:
    """``(L, C)`` from the build context; a clear error when the recipe gives neither."""
    if not ctx.code_length or not ctx.num_classes:
        raise ContractError(f"loss {loss_name!r} needs the code length and the number of classes")
    return int(ctx.code_length), int(ctx.num_classes)
