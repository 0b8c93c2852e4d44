"""``attention_dispersion``: AGMH's attention dispersion loss (ADL) on the K attribute maps.

For the maps m (B, K, h, w) (``attribute_grouping``'s extra ``attribute_maps``: the channel-wise max of each
SIEA output), pi_k = softmax of m_k over the h*w positions per image, and::

    ADL = 1 / (B * K(K-1)/2) * sum_b sum_{k < l} sum_p pi_k(p) * pi_l(p)

0 for disjoint maps, 1/(h*w) for uniform ones. As aassxun/DSH_Analysis @ 44271bc (``AGMH.py``, ``Feat_Loss``)
and the authors' Lx-zjwf/AGMH @ a65c547 compute it; the reference weights it 0.5 (``f_rat``: set the recipe's
loss ``weight``). Needs at least two maps.
"""

from __future__ import annotations

import attrs
import torch

from hashkit.errors import ContractError
from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult


@attrs.frozen
class AttentionDispersionConfig:
    #: the extra holding the (B, K, h, w) maps
    maps: str = "attribute_maps"


class AttentionDispersion(Loss):
    def __init__(self, cfg: AttentionDispersionConfig):
        super().__init__()
        self.cfg = cfg
        self.requires = (f"extras.{cfg.maps}",)

    def forward(self, inputs: LossInputs) -> LossResult:
        m = inputs.extras.get(self.cfg.maps)
        if m is None:
            raise ContractError(f"loss 'attention_dispersion' needs the extra {self.cfg.maps!r} (e.g. "
                                "attribute_grouping in train mode)")
        b, k = m.shape[:2]
        if k < 2:
            raise ContractError(f"attention_dispersion needs at least two maps, found {k}")
        pi = m.float().flatten(2).softmax(dim=2)
        gram = pi @ pi.transpose(1, 2)  # (B, K, K): sum_p pi_k pi_l
        pairs = torch.triu(gram, diagonal=1).sum()
        return LossResult(value=pairs / (b * k * (k - 1) // 2))


def build_attention_dispersion(cfg: AttentionDispersionConfig, ctx: BuildContext) -> AttentionDispersion:
    """AGMH attention dispersion: mean overlap of the position softmaxes of K attention maps."""
    return AttentionDispersion(cfg)


def _example():
    from hashkit.testing import ComponentExample, example_loss_inputs

    def inputs(comp):
        li = example_loss_inputs()
        g = torch.Generator().manual_seed(5)
        li.extras = {"attribute_maps": torch.randn(6, 4, 3, 3, generator=g).requires_grad_()}
        return (li,)

    return ComponentExample(inputs=inputs)


def components(register):
    register("loss", "attention_dispersion", build_attention_dispersion, config=AttentionDispersionConfig,
             example=_example)
