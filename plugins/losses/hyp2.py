"""``hyp2``: HyP², beyond hypersphere metric space for multi-label image retrieval (Xu et al., ACM MM 2022),
as DSH_Analysis re-implements it (``hyp2.HyP``).

One learnable proxy per class (``proxies`` (C, L), Kaiming-normal fan_out, a loss parameter: give it its own
learning rate with ``[[optimizer.param_groups]] match = "proxies"``); ``x`` the raw output
(``input = "logits"``), ``cos`` its cosine with every proxy::

    pos = mean over positive (sample, proxy) entries of (1 − cos)
    neg = mean over negative entries of max(cos − τ, 0)
    reg = β · mean over pairs of multi-label samples (more than one label) sharing no label of max(cos(x_i, x_j) − τ, 0)
    loss = pos + neg + reg        (reg = 0 without such a pair)

β = 0.5; τ from the code table of HHF (``hhf_tau``: ``1 − 2 d_min / L`` of the best binary code with
``⌈log₂ C⌉`` information bits; the codebook substitution rule where the table has no entry), or ``tau``.
Parts: ``pos``, ``neg``, ``reg``.
"""

from __future__ import annotations

import attrs
import torch.nn.functional as F

from hashkit.interfaces import BuildContext, Loss, LossInputs, LossResult
from hashkit_plugins.losses._batch_input import RawInputConfig, read_batch
from hashkit_plugins.losses._proxies import make_proxies, proxy_cosines, proxy_sizes
from hashkit_plugins.losses.hhf import resolve_tau


@attrs.frozen
class HyP2Config(RawInputConfig):
    #: weight β of the data-pair term among multi-label samples
    beta: float = attrs.field(default=0.5, validator=attrs.validators.ge(0.0))
    #: cosine threshold τ; unset = the code-table value for (L, C)
    tau: float | None = None


class HyP2(Loss):
    def __init__(self, cfg: HyP2Config, num_classes: int, code_length: int):
        super().__init__()
        self.cfg = cfg
        self.requires = (cfg.input, "labels")
        self.proxies = make_proxies(num_classes, code_length)
        self.tau, self.tau_source = resolve_tau(cfg.tau, code_length, num_classes)

    def forward(self, inputs: LossInputs) -> LossResult:
        x, y = read_batch(inputs, self.cfg.input, "hyp2")
        cos = proxy_cosines(x, self.proxies)
        positive = y == 1
        negative = y == 0
        pos = (1 - cos)[positive].sum() / (y != 0).sum()
        neg = F.relu(cos - self.tau)[negative].sum() / negative.sum()
        reg = x.sum() * 0.0
        multi = y.sum(dim=1) > 1
        if self.cfg.beta > 0 and multi.any():
            y_m = y[multi]
            unrelated = (y_m @ y_m.t()) == 0
            if unrelated.any():
                x_m = F.normalize(x[multi], dim=1)
                reg = self.cfg.beta * F.relu(x_m @ x_m.t() - self.tau)[unrelated].sum() / unrelated.sum()
        return LossResult(value=pos + neg + reg, parts={"pos": pos, "neg": neg, "reg": reg})

    def extra_repr(self) -> str:
        return f"tau={self.tau:.4f} ({self.tau_source})"


def build_hyp2(cfg: HyP2Config, ctx: BuildContext) -> HyP2:
    """HyP²: proxy hinge loss (positives to 1, negatives below τ) plus a multi-label data-pair term."""
    return HyP2(cfg, *proxy_sizes(ctx, "hyp2"))


def components(register):
    register("loss", "hyp2", build_hyp2, config=HyP2Config)
