"""``reconstruction``: A2-Net's attribute-aware reconstruction term, ``MSE(r, all_f)``.

r (B, D) is the hash head's tied-weight decoding of the relaxed codes (``linear`` head with ``decoder =
"tied"``: ``r = codes · W``, extra ``reconstruction``) and all_f (B, D) the model's real-valued descriptor (the
concatenated aggregation descriptors, ``[f_1 .. f_M, f_G]`` for A2-Net); the mean is over all B·D elements and
both sides carry gradient, as in aassxun/DSH_Analysis @ 44271bc (``models/A_2_net_loss.py``).

``from_round``: the term is 0 before this 0-based round (the reference switches it on at ``max_iter // 2``,
round 20 of 40); the round comes from ``begin_epoch``.
"""

from __future__ import annotations

import attrs
import torch.nn.functional as F

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit_plugins.losses._schedule import FromRound, zero_like


@attrs.frozen
class ReconstructionConfig:
    #: 0-based round from which the term is on (0 = always)
    from_round: int = attrs.field(default=0, validator=attrs.validators.ge(0))


class Reconstruction(FromRound, Loss):
    def __init__(self, cfg: ReconstructionConfig):
        super().__init__()
        self.cfg = cfg
        self.requires = ("descriptor", "extras.reconstruction")
        self.schedule_from_round(cfg.from_round)

    def forward(self, inputs: LossInputs) -> LossResult:
        if not self.is_active():
            return LossResult(value=zero_like(inputs))
        r = inputs.extras.get("reconstruction")
        if r is None:
            raise ContractError("loss 'reconstruction' needs the extra 'reconstruction' (a linear hash head with "
                                "decoder = \"tied\")")
        if r.shape != inputs.descriptor.shape:
            raise ContractError(f"loss 'reconstruction': the reconstruction {tuple(r.shape)} and the descriptor "
                                f"{tuple(inputs.descriptor.shape)} differ in shape")
        return LossResult(value=F.mse_loss(r.float(), inputs.descriptor.float()))


def build_reconstruction(cfg: ReconstructionConfig, ctx: BuildContext) -> Reconstruction:
    """A2-Net reconstruction: MSE between the tied-weight decoding of the codes and the descriptor."""
    return Reconstruction(cfg)


def _example():
    import torch

    from hashkit.testing import ComponentExample, example_loss_inputs

    def inputs(comp):
        li = example_loss_inputs()
        w = torch.randn(12, 32, generator=torch.Generator().manual_seed(2))
        li.extras = {"reconstruction": li.codes @ w}
        return (li,)

    return ComponentExample(inputs=inputs)


def components(register):
    register("loss", "reconstruction", build_reconstruction, config=ReconstructionConfig, example=_example)
