"""``proxy_code_mse``: regress the code onto the protocol's fixed target codes (FISH, CHN).

``loss = (1 / (b L)) * sum_i ||h_i - t_i||^2`` (``nn.MSELoss`` / ``F.mse_loss`` with mean reduction), with
``h`` the hash head's pre-activation ``logits`` (FISH and CHN regress the raw, un-squashed code) and ``t``
the batch rows of the ``proxy_codes`` protocol's targets (``LossInputs.protocol["targets"]``, ±1).
``input = "codes"`` regresses the bounded relaxed codes instead.
"""

from __future__ import annotations

import attrs

from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit_plugins.losses._code_input import CodeInput, code_tensor


@attrs.frozen
class ProxyCodeMSEConfig:
    #: which model output is regressed: the raw "logits" (FISH, CHN) or the bounded "codes"
    input: CodeInput = "logits"


class ProxyCodeMSE(Loss):
    def __init__(self, cfg: ProxyCodeMSEConfig):
        super().__init__()
        self.cfg = cfg
        self.requires = (cfg.input, "protocol.targets")

    def forward(self, inputs: LossInputs) -> LossResult:
        h = code_tensor(inputs, self.cfg.input, "proxy_code_mse")
        targets = inputs.protocol["targets"].to(h)
        return LossResult(value=(h - targets).pow(2).mean())


def build_proxy_code_mse(cfg: ProxyCodeMSEConfig, ctx: BuildContext) -> ProxyCodeMSE:
    """Mean squared error between the code and the protocol's label-derived target code."""
    return ProxyCodeMSE(cfg)


def _example():
    import torch

    from hashkit.testing import ComponentExample, example_loss_inputs

    def inputs(comp):
        li = example_loss_inputs()
        g = torch.Generator().manual_seed(1)
        li.protocol = {"targets": torch.randint(0, 2, li.logits.shape, generator=g).float() * 2 - 1}
        return (li,)

    return ComponentExample(inputs=inputs)


def components(register):
    register("loss", "proxy_code_mse", build_proxy_code_mse, config=ProxyCodeMSEConfig, example=_example)
