"""``resnet18`` / ``resnet34`` / ``resnet50`` / ``resnet101`` / ``resnet152``: torchvision ResNets as a stage trunk.

The trunk holds ``conv1, bn1, relu, maxpool`` and the stages ``layer1`` .. ``until`` under torchvision's
module names, so ImageNet checkpoints load by name. Stages after ``until`` are not held; ``build_stage(name)``
returns a fresh ``nn.Sequential`` of that stage's residual blocks (SEMICON builds two layer4 copies on a
conv1..layer3 trunk).

Stage specs (channels, stride relative to the input):

============  ==================  =========================
stage         resnet18 / 34       resnet50 / 101 / 152
============  ==================  =========================
``layer1``    64, 4               256, 4
``layer2``    128, 8              512, 8
``layer3``    256, 16             1024, 16
``layer4``    512, 32             2048, 32
============  ==================  =========================

Weights (``weights``):

- ``"none"``: random init;
- ``"imagenet"``: torchvision's ImageNet-1k V1 checkpoint looked up in the torch hub cache
  (``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``) under its known file names
  (for resnet50: ``resnet50-19c8e357.pth``, the file SEMICON's code downloads, then ``resnet50-0676ba61.pth``);
  nothing is downloaded;
- a path to a ``.pth`` (read with ``torch.load(weights_only=True)``) or ``.safetensors`` file holding a
  torchvision ResNet state dict (``fc.*`` keys and keys of stages beyond the trunk are ignored by the trunk).

The trunk loads strictly. A stage copy from ``build_stage`` loads the checkpoint's blocks listed in
``copy_pretrained_blocks`` (torchvision block indices; ``None`` = every block) and leaves the others at their
random init. SEMICON's official setup is ``[0, 1]``: its layer4 copy is ``[B0, B1, ICON, B2, ICON]`` and
torchvision's ``layer4.2.*`` keys land on the ICON's index, are dropped as unexpected, and leave ``B2`` random
(aassxun/SEMICON @ 885cbfe0, ``models/SEMICON.py``; docs/methods/semicon.md).

Init of everything not loaded (torchvision's rule, which SEMICON's code keeps): every Conv2d ``kaiming_normal_(fan_out,
relu)``, every BatchNorm weight 1 and bias 0, ``zero_init_residual`` off.

Tensor contract: ``forward(x (B,3,H,W), taps) -> {stage: (B, C_stage, ceil(H/stride), ceil(W/stride))}``.
"""

from __future__ import annotations

import copy
from functools import partial
from pathlib import Path
from typing import Sequence

import attrs
import torch
from torch import Tensor, nn

from hashkit.errors import CheckpointError, ContractError
from hashkit.interfaces import Backbone, BuildContext, FeatureSpec
from hashkit.weights_file import read_weights, weights_wanted
from hashkit_plugins.resnet_blocks import BasicBlock, Bottleneck, conv1x1

STAGES = ("layer1", "layer2", "layer3", "layer4")

#: depth -> (block class, blocks per stage)
ARCHS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}

#: torchvision ImageNet-1k V1 file names, in lookup order (the original release first: SEMICON's code uses it)
IMAGENET_FILES: dict[int, tuple[str, ...]] = {
    18: ("resnet18-5c106cde.pth", "resnet18-f37072fd.pth"),
    34: ("resnet34-333f7ec4.pth", "resnet34-b627a593.pth"),
    50: ("resnet50-19c8e357.pth", "resnet50-0676ba61.pth"),
    101: ("resnet101-5d3b4d8f.pth", "resnet101-63fe2227.pth"),
    152: ("resnet152-b121ed2d.pth", "resnet152-394f9c45.pth"),
}


@attrs.frozen
class ResNetConfig:
    #: the trunk holds stages up to this one; later stages are available through build_stage
    until: str = attrs.field(default="layer4", validator=attrs.validators.in_(STAGES))
    #: "none" (random init), "imagenet" (torch hub cache, no download) or a path to a .pth / .safetensors file
    weights: str = "none"
    #: torchvision block indices of a build_stage copy that receive pretrained weights (None = all blocks);
    #: SEMICON's official setup is [0, 1] (layer4.2 stays random)
    copy_pretrained_blocks: tuple[int, ...] | None = None


def init_weights(module: nn.Module) -> None:
    """torchvision's ResNet init: conv ``kaiming_normal_(fan_out, relu)``, BatchNorm weight 1 / bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)


def make_stage(block: type[nn.Module], inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    """One ResNet stage as torchvision builds it (projection shortcut on the first block when needed)."""
    expansion = block.expansion
    downsample = None
    if stride != 1 or inplanes != planes * expansion:
        downsample = nn.Sequential(conv1x1(inplanes, planes * expansion, stride), nn.BatchNorm2d(planes * expansion))
    layers = [block(inplanes, planes, stride, downsample)]
    layers += [block(planes * expansion, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def find_imagenet_file(depth: int) -> Path:
    """The first known ImageNet file for ``depth`` in the torch hub cache; CheckpointError naming them if none."""
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    names = IMAGENET_FILES[depth]
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise CheckpointError(
        f"resnet{depth}: weights = \"imagenet\" needs {' or '.join(names)} in {folder} (set TORCH_HOME to move it); "
        f"hashkit does not download: copy the torchvision file there or set weights to its path, or \"none\""
    )


class ResNet(Backbone):
    """A torchvision ResNet trunk up to ``cfg.until``; see the module docstring."""

    def __init__(self, cfg: ResNetConfig, depth: int):
        super().__init__()
        if depth not in ARCHS:
            raise ContractError(f"resnet depth must be one of {sorted(ARCHS)}, found {depth}")
        self.cfg = cfg
        self.depth = depth
        self.block, self.layers = ARCHS[depth]
        expansion = self.block.expansion
        specs = {name: FeatureSpec(64 * 2**i * expansion, 4 * 2**i) for i, name in enumerate(STAGES)}
        n_trunk = STAGES.index(cfg.until) + 1
        self.stage_specs = {name: specs[name] for name in STAGES[:n_trunk]}
        self.extra_stage_specs = {name: specs[name] for name in STAGES[n_trunk:]}

        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for name in STAGES[:n_trunk]:
            self.add_module(name, self._new_stage(name))
        init_weights(self)

        #: pretrained tensors of the stages beyond the trunk, kept for build_stage (not in state_dict)
        self._extra_weights: dict[str, Tensor] = {}
        self.weights_source: str | None = None
        if cfg.weights != "none" and weights_wanted():
            self._load(cfg.weights)

    def _new_stage(self, name: str) -> nn.Sequential:
        i = STAGES.index(name)
        inplanes = 64 if i == 0 else 64 * 2 ** (i - 1) * self.block.expansion
        return make_stage(self.block, inplanes, 64 * 2**i, self.layers[i], 1 if i == 0 else 2)

    def _load(self, weights: str) -> None:
        path = find_imagenet_file(self.depth) if weights == "imagenet" else Path(weights).expanduser()
        state = read_weights(path, f"resnet{self.depth} weights file")
        trunk_prefixes = ("conv1.", "bn1.", *(f"{s}." for s in self.stage_specs))
        trunk = {k: v for k, v in state.items() if k.startswith(trunk_prefixes)}
        try:
            result = self.load_state_dict(trunk, strict=False)
        except RuntimeError as exc:  # shape mismatches
            detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc))
            raise CheckpointError(f"resnet{self.depth} weights {path}: {detail}") from None
        if result.missing_keys:
            raise CheckpointError(
                f"resnet{self.depth} weights {path}: missing {len(result.missing_keys)} trunk keys, e.g. "
                f"{result.missing_keys[:3]} (is it a torchvision resnet{self.depth} state dict?)"
            )
        extra_prefixes = tuple(f"{s}." for s in self.extra_stage_specs)
        self._extra_weights = {k: v for k, v in state.items() if k.startswith(extra_prefixes)}
        self.weights_source = str(path)

    def forward(self, x: Tensor, taps: Sequence[str]) -> dict[str, Tensor]:
        self.check_taps(taps)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.run_stages(x, ((name, getattr(self, name)) for name in STAGES), taps)

    def build_stage(self, name: str) -> nn.Sequential:
        """A fresh copy of ``name``: a trunk stage is deep-copied; a later stage is built, initialised and gets
        the pretrained blocks of ``copy_pretrained_blocks`` (when the backbone was built with weights)."""
        if name in self.stage_specs:
            return copy.deepcopy(getattr(self, name))
        if name not in self.extra_stage_specs:
            return super().build_stage(name)
        stage = self._new_stage(name)
        init_weights(stage)
        if self.weights_source is None:
            return stage
        blocks = self.cfg.copy_pretrained_blocks
        blocks = tuple(range(len(stage))) if blocks is None else blocks
        for i in blocks:
            if not 0 <= i < len(stage):
                raise ContractError(
                    f"resnet{self.depth}: copy_pretrained_blocks has {i} but {name} has {len(stage)} blocks"
                )
            prefix = f"{name}.{i}."
            sub = {k[len(prefix):]: v for k, v in self._extra_weights.items() if k.startswith(prefix)}
            try:
                stage[i].load_state_dict(sub, strict=True)
            except RuntimeError as exc:
                raise CheckpointError(
                    f"resnet{self.depth} weights {self.weights_source}: block {name}.{i} does not load: "
                    f"{str(exc).splitlines()[0]}"
                ) from None
        return stage


def build_resnet(cfg: ResNetConfig, ctx: BuildContext, *, depth: int) -> ResNet:
    """torchvision ResNet trunk with stage copies (ImageNet weights from a local file only)."""
    return ResNet(cfg, depth)


def _factory(depth: int):
    factory = partial(build_resnet, depth=depth)
    factory.__doc__ = f"torchvision ResNet-{depth} trunk up to `until`, stage copies via build_stage, local weights only."
    return factory


def _example():
    from hashkit.testing import ComponentExample, expect

    def check(comp, out):
        stage = comp.build_stage("layer4")
        expect(isinstance(stage, nn.Sequential) and len(stage) == comp.layers[3],
               f"layer4 copy: {len(stage)} blocks, expected {comp.layers[3]}")

    return ComponentExample(config={"until": "layer3"}, check=check)


def components(register):
    for depth in sorted(ARCHS):
        register("backbone", f"resnet{depth}", _factory(depth), config=ResNetConfig,
                 example=_example)
