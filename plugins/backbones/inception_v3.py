"""``inception_v3``: torchvision's Inception-v3 trunk as named stages (GDF-Net / WS-DAN tap ``Mixed_6e``).

Stages (channels; nominal stride): ``stem`` (Conv2d_1a .. maxpool2; 192; 8), ``Mixed_5d`` (Mixed_5b-5d;
288; 8), ``Mixed_6e`` (Mixed_6a-6e; 768; 16), ``Mixed_7c`` (Mixed_7a-7c; 2048; 32). The trunk holds the stages
up to ``until`` (default ``Mixed_6e``); later ones are ``extra_stage_specs`` built by ``build_stage``. No
auxiliary classifier and no ``fc``. Inception's unpadded convolutions give sizes that are not ``H/stride``
(448 -> 26x26 at Mixed_6e, 299 -> 17x17), so the specs declare no stride. The input must be at least 75 px
for ``Mixed_7c`` (and about 60 px for ``Mixed_6e``).

Weights (``weights``):
- ``"imagenet"`` (default): torchvision's ImageNet file ``inception_v3_google-0cc3c7bd.pth`` read from the
  torch hub cache (``$TORCH_HOME/hub/checkpoints``); never downloaded. A missing file raises
  :class:`~hashkit.errors.CheckpointError` saying where to put it;
- a path to a ``.pth`` (loaded with ``weights_only=True``) or ``.safetensors`` state dict with torchvision's
  key names (``Mixed_6e.branch1x1.conv.weight``; ``AuxLogits.*`` and ``fc.*`` are ignored);
- ``"none"``: random initialisation (torchvision's truncated-normal init).

``transform_input`` (default: on with pretrained weights, as torchvision) maps ImageNet-normalised input to
the ``(x - 0.5)/0.5`` normalisation the Google weights expect.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import attrs
import torch
from torch import Tensor, nn

from hashkit.errors import CheckpointError
from hashkit.interfaces import Backbone, BuildContext, FeatureSpec
from hashkit.testing import ComponentExample
from hashkit.weights_file import read_weights, weights_wanted

IMAGENET_FILE = "inception_v3_google-0cc3c7bd.pth"
IMAGENET_URL = f"https://download.pytorch.org/models/{IMAGENET_FILE}"

#: stage name -> torchvision children it holds, in order
STAGES: dict[str, tuple[str, ...]] = {
    "stem": ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
             "maxpool2"),
    "Mixed_5d": ("Mixed_5b", "Mixed_5c", "Mixed_5d"),
    "Mixed_6e": ("Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"),
    "Mixed_7c": ("Mixed_7a", "Mixed_7b", "Mixed_7c"),
}
CHANNELS = {"stem": 192, "Mixed_5d": 288, "Mixed_6e": 768, "Mixed_7c": 2048}


@attrs.frozen
class InceptionV3Config:
    #: "imagenet" (torch hub cache file), a path to a state dict file, or "none" (random init)
    weights: str = "imagenet"
    #: the trunk holds the stages up to this one (GDF-Net taps Mixed_6e)
    until: str = attrs.field(default="Mixed_6e", validator=attrs.validators.in_(tuple(STAGES)))
    #: ImageNet-normalised input -> Google normalisation; default: on with pretrained weights
    transform_input: bool | None = None


def weights_path(weights: str) -> Path | None:
    """Resolve the ``weights`` setting to a file (``None`` for random init); error naming where it looked."""
    if weights == "none":
        return None
    if weights == "imagenet":
        path = Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET_FILE
        if not path.is_file():
            raise CheckpointError(
                f"backbone inception_v3: ImageNet weights not found at {path}; hashkit never downloads them: "
                f"fetch {IMAGENET_URL} into that folder on a machine with network access, set "
                f"weights = '/path/to/{IMAGENET_FILE}', or weights = 'none' for random initialisation"
            )
        return path
    path = Path(weights).expanduser()
    if not path.is_file():
        raise CheckpointError(f"backbone inception_v3: weights file {path} does not exist "
                              "(weights = 'imagenet', 'none' or a path to a .pth / .safetensors state dict)")
    return path


def _build_stage(net: nn.Module, name: str) -> nn.Sequential:
    return nn.Sequential(OrderedDict((child, getattr(net, child)) for child in STAGES[name]))


def _load_stage(stage: nn.Sequential, name: str, state: dict[str, Tensor], path: Path) -> None:
    own = stage.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise CheckpointError(f"backbone inception_v3: {path} lacks {len(missing)} weights of stage {name} "
                              f"(first: {missing[0]!r}); expected torchvision key names")
    for key, value in own.items():
        if state[key].shape != value.shape:
            raise CheckpointError(f"backbone inception_v3: {path}: {key} has shape {tuple(state[key].shape)}, "
                                  f"expected {tuple(value.shape)}")
    stage.load_state_dict({k: state[k] for k in own})


class InceptionV3(Backbone):
    """Inception-v3 stages; see the module docstring."""

    def __init__(self, cfg: InceptionV3Config):
        super().__init__()
        names = list(STAGES)
        depth = names.index(cfg.until) + 1
        self._weights = weights_path(cfg.weights) if weights_wanted() else None
        self.transform_input = cfg.transform_input if cfg.transform_input is not None else self._weights is not None
        from torchvision.models.inception import Inception3  # imported on use: plugin loading stays light

        net = Inception3(aux_logits=False, init_weights=self._weights is None)
        state = read_weights(self._weights, "inception_v3 weights file") if self._weights is not None else None
        self.stages = nn.ModuleDict()
        for name in names[:depth]:
            stage = _build_stage(net, name)
            if state is not None:
                _load_stage(stage, name, state, self._weights)
            self.stages[name] = stage
        self._fresh = {name: _build_stage(net, name) for name in names[depth:]}
        specs = {n: FeatureSpec(CHANNELS[n]) for n in names}
        self.stage_specs = {n: specs[n] for n in names[:depth]}
        self.extra_stage_specs = {n: specs[n] for n in names[depth:]}

    def _transform(self, x: Tensor) -> Tensor:
        mean = x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return x * (std / 0.5) + (mean - 0.5) / 0.5

    def forward(self, x: Tensor, taps: Sequence[str]) -> dict[str, Tensor]:
        self.check_taps(taps)
        if self.transform_input:
            x = self._transform(x)
        return self.run_stages(x, self.stages.items(), taps)

    def build_stage(self, name: str) -> nn.Sequential:
        if name in self.stages:
            return copy.deepcopy(self.stages[name])
        if name in self._fresh:
            stage = copy.deepcopy(self._fresh[name])
            if self._weights is not None:
                _load_stage(stage, name, read_weights(self._weights, "inception_v3 weights file"), self._weights)
            return stage
        return super().build_stage(name)


def build_inception_v3(cfg: InceptionV3Config, ctx: BuildContext) -> InceptionV3:
    """torchvision Inception-v3 trunk (stem .. Mixed_7c), ImageNet weights from a local file only."""
    return InceptionV3(cfg)


def _example() -> ComponentExample:
    g = torch.Generator().manual_seed(0)
    return ComponentExample(config={"weights": "none"},
                            inputs=lambda comp: (torch.randn(1, 3, 64, 64, generator=g), list(comp.stage_specs)))


def components(register):
    register("backbone", "inception_v3", build_inception_v3, config=InceptionV3Config, example=_example)
