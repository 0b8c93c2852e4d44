"""``sem``: SEMICON's suppression-enhancing mask attention (aassxun/SEMICON @ 885cbfe0,
``models/SEMICON.py``), three cumulative stages.

Trunk (stride 1, spatial size kept; C = input channels, must be a multiple of 64)::

    trunk.0  Bottleneck(C, width C/4, out C)          (identity shortcut)
    trunk.1  Conv1x1 C -> C/4 (no bias) + BN          (no ReLU)
    trunk.2  Bottleneck(C/4, width C/16, out C/4)
    trunk.3  Conv1x1 C/4 -> C/16 + BN                 (no ReLU)
    trunk.4  Bottleneck(C/16, width C/64, out C/16)
    heads.k  Conv1x1 C/16 -> 1 (no bias) + BN(1) + ReLU,  k = 0, 1, 2

At resnet50's layer3 (C = 1024) this is 1024 -> 256 -> 64, the official module (official names
``attention.layer4.*`` = ``trunk.*``, ``attention.feature{k}.*`` = ``heads.{k-1}.*``).

Stage recursion (``s(.)`` is the mask multiplier, computed without gradient)::

    Z = trunk(X);  A1 = heads.0(Z);  Z = Z * s(A1);  A2 = heads.1(Z);  Z = Z * s(A2);  A3 = heads.2(Z)

Mask multiplier of one map A (B,1,h,w) (:func:`sem_multiplier`):
p = softmax of A over the h*w positions per image; (sigma, mu) = unbiased ``torch.std_mean`` of p over the
scope; m = clamp((p - mu) / sigma**alpha + 1, 0, 2); s = 2 - m.

Sigma scope (``sigma``):

- ``"batch"`` (official): one sigma and mu over the whole (B, h*w) tensor, in train and eval, so an image's
  code depends on its batch-mates;
- ``"image"``: sigma and mu over each image's own h*w positions;
- ``"running"``: in train mode the batch sigma (as ``"batch"``) and an exponential running estimate per
  stage (``running_sigma``, like BatchNorm's running variance, ``momentum``); in eval mode the running sigma
  and each image's own mu, so codes do not depend on the batch. Before any training step the eval mode falls
  back to ``"image"``.

``sigma_eps > 0`` clamps sigma from below (the official code divides by 0**alpha = 0 when a stage map is
constant over the whole batch, giving NaN, SEMICON @ 885cbfe0 ``models/SEMICON.py``). With ``check_finite``
(default) a non-finite mask raises :class:`~hashkit.errors.ContractError` naming the stage instead of letting
NaN reach the codes. A 1x1 input map (one position: images too small for the tapped stage) has no spread at
all, whatever the scope or ``sigma_eps``; it is refused with an error that says how large the images must be.

Tensor contract: input (B, C, h, w) -> ``AttentionOutput(features = input unchanged, maps = [A1, A2, A3]
(B, 3, h, w) >= 0)``. The maps are the raw ReLU outputs (they weight the local branches); SEM's parameters get
gradients only through them. Maps are named ``stage1..stage3`` for ``hashkit attention``.

Serving and export: ``eval_batch_dependent`` is true for ``sigma = "batch"`` (``hashkit encode`` and ``search``
warn, the search service encodes each query alone, an ONNX export reproduces the batch-global sigma and says
so in its metadata). The finite
check is skipped inside ``torch.export`` (an exported graph cannot raise), so guard with ``sigma_eps`` there.
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
from torch import Tensor, nn

from hashkit.errors import ContractError
from hashkit.interfaces import Attention, AttentionOutput, BuildContext
from hashkit_plugins.resnet_blocks import Bottleneck, conv1x1


@attrs.frozen
class SEMConfig:
    #: exponent of sigma in the normalisation: 0.15 in the official code since Nov 2023, 0.3 in the paper
    alpha: float = attrs.field(default=0.15, validator=attrs.validators.ge(0.0))
    #: where sigma and mu come from: "batch" (official), "image", "running" (see the module docstring)
    sigma: Literal["batch", "image", "running"] = "batch"
    #: lower bound on sigma (0 = none, the official behaviour); e.g. 1e-12 guards against all-zero maps
    sigma_eps: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    #: running-sigma update rate (sigma = "running")
    momentum: float = attrs.field(default=0.1, validator=[attrs.validators.gt(0.0), attrs.validators.le(1.0)])
    #: raise an error naming the stage when a mask is not finite
    check_finite: bool = True


def sem_multiplier(a: Tensor, alpha: float, scope: str = "batch", sigma: Tensor | None = None,
                   sigma_eps: float = 0.0) -> tuple[Tensor, Tensor]:
    """The multiplier ``s = 2 - m`` (B,1,h,w) of one stage map ``a`` (B,1,h,w) and the sigma used.

    ``scope`` is ``"batch"`` (one sigma/mu over the batch, ``torch.std_mean`` semantics) or ``"image"``;
    a given ``sigma`` (a 0-dim tensor, the running estimate) replaces the computed one, with mu per image.
    Computed in float32 without gradient.
    """
    b, _, h, w = a.shape
    with torch.no_grad():
        p = torch.softmax(a.float().mean(1).reshape(b, h * w), dim=1)
        if sigma is not None:
            mu = p.mean(dim=1, keepdim=True)
            std = sigma.to(p)
        elif scope == "batch":
            std, mu = torch.std_mean(p)
        else:
            std, mu = torch.std_mean(p, dim=1, keepdim=True)
        if sigma_eps > 0:
            std = std.clamp_min(sigma_eps)
        m = ((p - mu) / std**alpha + 1).reshape(b, 1, h, w).clamp(0, 2)
        return 2 - m, std


class SEM(Attention):
    num_maps = 3
    map_names = ("stage1", "stage2", "stage3")

    def __init__(self, cfg: SEMConfig, channels: int, stride: int = 1):
        super().__init__()
        if channels < 64 or channels % 64:
            raise ContractError(f"sem needs input channels that are a multiple of 64 (C -> C/4 -> C/16), found {channels}")
        self.cfg = cfg
        self.stride = stride
        self.in_channels = self.out_channels = channels
        c1, c2, c3 = channels, channels // 4, channels // 16
        self.trunk = nn.Sequential(
            Bottleneck(c1, c1 // 4),
            nn.Sequential(conv1x1(c1, c2), nn.BatchNorm2d(c2)),
            Bottleneck(c2, c2 // 4),
            nn.Sequential(conv1x1(c2, c3), nn.BatchNorm2d(c3)),
            Bottleneck(c3, c3 // 4),
        )
        self.heads = nn.ModuleList(
            nn.Sequential(conv1x1(c3, 1), nn.BatchNorm2d(1), nn.ReLU(inplace=True)) for _ in range(3)
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if cfg.sigma == "running":
            self.register_buffer("running_sigma", torch.ones(2))
            self.register_buffer("num_sigma_updates", torch.zeros((), dtype=torch.long))

    @property
    def eval_batch_dependent(self) -> bool:
        """With ``sigma = "batch"`` an image's eval output depends on its batch-mates (read by serving/export)."""
        return self.cfg.sigma == "batch"

    def _multiplier(self, a: Tensor, stage: int) -> Tensor:
        cfg = self.cfg
        if cfg.sigma == "running":
            if self.training:
                s, std = sem_multiplier(a, cfg.alpha, "batch", sigma_eps=cfg.sigma_eps)
                with torch.no_grad():
                    rs = self.running_sigma[stage]
                    first = self.num_sigma_updates == 0
                    self.running_sigma[stage] = torch.where(first, std, (1 - cfg.momentum) * rs + cfg.momentum * std)
                    if stage == 1:
                        self.num_sigma_updates += 1
            else:  # running sigma, or each image's own before any update (no Python branch: exportable)
                _, own = sem_multiplier(a, cfg.alpha, "image")
                sigma = torch.where(self.num_sigma_updates == 0, own, self.running_sigma[stage].expand_as(own))
                s, _ = sem_multiplier(a, cfg.alpha, sigma=sigma, sigma_eps=cfg.sigma_eps)
        else:
            s, _ = sem_multiplier(a, cfg.alpha, cfg.sigma, sigma_eps=cfg.sigma_eps)
        # the finite check is a data-dependent branch; an exported graph (torch.export / ONNX) goes without it
        if cfg.check_finite and not torch.compiler.is_exporting() and not torch.isfinite(s).all():
            raise ContractError(
                f"sem: the stage-{stage + 1} mask is not finite for a batch of {a.shape[0]} images (sigma = 0: the "
                f"stage map is constant over the {'batch' if cfg.sigma != 'image' else 'image'}); set "
                "sigma_eps = 1e-12 to guard sigma from below"
            )
        return s.to(a.dtype)

    def forward(self, x: Tensor) -> AttentionOutput:
        if x.shape[-2] * x.shape[-1] < 2:
            side = 2 * self.stride if self.stride > 1 else None
            size = f"at least {side} px on the longer side, since the tapped stage has stride {self.stride}" \
                if side else "larger images"
            raise ContractError(
                f"sem: its input map is {x.shape[-2]}x{x.shape[-1]}, a single position, so the mask has no spread "
                f"(sigma is undefined; sigma_eps and the sigma scope cannot help): feed images with {size} "
                "after the transform (data.*_transform.crop), or tap an earlier stage")
        z = self.trunk(x)
        a1 = self.heads[0](z)
        z = z * self._multiplier(a1, 0)
        a2 = self.heads[1](z)
        z = z * self._multiplier(a2, 1)
        a3 = self.heads[2](z)
        return AttentionOutput(features=x, maps=torch.cat([a1, a2, a3], dim=1))


def build_sem(cfg: SEMConfig, ctx: BuildContext) -> SEM:
    """SEMICON's three-stage suppression-enhancing mask attention (maps stage1..stage3)."""
    return SEM(cfg, ctx.input_channels("sem"), ctx.in_spec.stride or 1)


def _example():
    from hashkit.interfaces import FeatureSpec
    from hashkit.testing import ComponentExample

    g = torch.Generator().manual_seed(0)
    return ComponentExample(ctx=BuildContext(in_spec=FeatureSpec(64, 16)),
                            inputs=(torch.randn(2, 64, 6, 6, generator=g),))


def components(register):
    register("attention", "sem", build_sem, config=SEMConfig, example=_example)
