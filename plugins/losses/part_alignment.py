"""``part_alignment``: ExchNet's local feature alignment, ``||F - A||_F / B``.

F (B, K, C) are the local part features after the exchange and A (B, K, C) the class anchors they were
exchanged with (``exchange_branches`` extras ``part_features`` and ``part_anchors``); ``||.||_F`` is the
Frobenius norm of the whole B x K x C difference, not squared, divided by the batch size, as ludics/fghash @
077160f (``models/exchnet_loss.py``) computes it. Parts that were exchanged equal their anchor and contribute
zero. Before the protocol hands out anchors (``adsh`` with ``anchors_after``) the term is 0. Weight 1 in the
reference (lambda_al).
"""

from __future__ import annotations

import torch

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit_plugins.losses._schedule import zero_like


class PartAlignment(Loss):
    requires = ("extras.part_features",)

    def forward(self, inputs: LossInputs) -> LossResult:
        anchors = inputs.extras.get("part_anchors")
        if anchors is None:
            if "part_features" not in inputs.extras:
                raise ContractError("loss 'part_alignment' needs the extra 'part_features' (exchange_branches)")
            return LossResult(value=zero_like(inputs))
        features = inputs.extras["part_features"].float()
        return LossResult(value=torch.linalg.vector_norm(features - anchors.float()) / features.shape[0])


def build_part_alignment(cfg, ctx: BuildContext) -> PartAlignment:
    """ExchNet alignment: Frobenius distance of the exchanged part features to their class anchors, over B."""
    return PartAlignment()


def _example():
    from hashkit.testing import ComponentExample, example_loss_inputs

    def inputs(comp):
        li = example_loss_inputs()
        g = torch.Generator().manual_seed(4)
        li.extras = {"part_features": torch.randn(6, 3, 8, generator=g).requires_grad_(),
                     "part_anchors": torch.randn(6, 3, 8, generator=g)}
        return (li,)

    return ComponentExample(inputs=inputs)


def components(register):
    register("loss", "part_alignment", build_part_alignment, example=_example)
