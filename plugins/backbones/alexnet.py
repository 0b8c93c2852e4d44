"""``alexnet``: torchvision's AlexNet as DeepHash-pytorch uses it (``network.py``, the default network of its
scripts): the convolutional ``features`` and the fully connected ``fc6``/``fc7`` with dropout, so a hash layer
reads the 4096-d fc7 output.

Stages:

- ``features``: ``(B, 256, h, w)`` after the last max pool (6×6 at 224 px; no exact stride);
- ``fc7``: ``(B, 4096, 1, 1)``: adaptive average pool to 6×6 (the identity at 224 px, where DeepHash-pytorch
  flattens directly), flatten, ``Dropout → fc6 (9216→4096) → ReLU → Dropout → fc7 (4096→4096) → ReLU``.
  Pool it with ``gap`` (a 1×1 map) and put a ``linear`` head on it: the network of DeepHash-pytorch's
  ``AlexNet(hash_bit)``, whose ``hash_layer`` is ``[Dropout, fc6, ReLU, Dropout, fc7, ReLU, Linear(4096, L)]``.

Weights: ``"none"`` (torchvision's init), ``"imagenet"`` (torchvision's ``alexnet-owt-7be5be79.pth`` from the torch
hub cache; no download) or a path. The ImageNet classifier (``classifier.6``) is not used; ``classifier.1`` and
``classifier.4`` become ``fc6`` and ``fc7``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import attrs
import torch
from torch import Tensor, nn

from hashkit.errors import CheckpointError
from hashkit.interfaces import Backbone, BuildContext, FeatureSpec
from hashkit.weights_file import read_weights

IMAGENET_FILE = "alexnet-owt-7be5be79.pth"
#: torchvision checkpoint names -> this backbone's names
TORCHVISION_NAMES = {"classifier.1.": "fc6.1.", "classifier.4.": "fc7.1."}


@attrs.frozen
class AlexNetConfig:
    #: "none" (random init), "imagenet" (torch hub cache, no download) or a path to a .pth / .safetensors file
    weights: str = "none"
    #: dropout before fc6 and before fc7 (torchvision and DeepHash-pytorch: 0.5)
    dropout: float = attrs.field(default=0.5, validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)])


def _features() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
    )


def _fc(cin: int, cout: int, dropout: float) -> nn.Sequential:
    """Dropout → Linear → ReLU (index 1 is the Linear, as in torchvision's classifier)."""
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(cin, cout), nn.ReLU(inplace=True))


class AlexNet(Backbone):
    def __init__(self, cfg: AlexNetConfig):
        super().__init__()
        self.cfg = cfg
        self.features = _features()
        self.pool = nn.AdaptiveAvgPool2d((6, 6))
        self.fc6 = _fc(256 * 6 * 6, 4096, cfg.dropout)
        self.fc7 = _fc(4096, 4096, cfg.dropout)
        # no exact stride: 224 px gives 6×6 (not 7×7) after the valid pools
        self.stage_specs = {"features": FeatureSpec(256, None), "fc7": FeatureSpec(4096, None)}
        self.extra_stage_specs = {}
        self.weights_source: str | None = None
        if cfg.weights != "none":
            self._load(cfg.weights)

    def _stages(self):
        yield "features", self.features
        yield "fc7", lambda x: self.fc7(self.fc6(torch.flatten(self.pool(x), 1)))[:, :, None, None]

    def forward(self, x: Tensor, taps: Sequence[str]) -> dict[str, Tensor]:
        return self.run_stages(x, self._stages(), taps)

    def _load(self, weights: str) -> None:
        if weights == "imagenet":
            path = Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET_FILE
            if not path.is_file():
                raise CheckpointError(f"alexnet: weights = \"imagenet\" needs {IMAGENET_FILE} in {path.parent} "
                                      "(set TORCH_HOME to move it); hashkit does not download")
        else:
            path = Path(weights).expanduser()
        state = {}
        for key, value in read_weights(path, "alexnet weights file").items():
            if key.startswith("classifier.6."):
                continue
            for old, new in TORCHVISION_NAMES.items():
                key = new + key[len(old):] if key.startswith(old) else key
            state[key] = value
        missing, unexpected = self.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise CheckpointError(f"alexnet weights {path}: missing {missing[:3]}, unexpected {unexpected[:3]}")
        self.weights_source = str(path)


def build_alexnet(cfg: AlexNetConfig, ctx: BuildContext) -> AlexNet:
    """torchvision AlexNet (features, fc6, fc7) as DeepHash-pytorch's default network; local weights only."""
    return AlexNet(cfg)


def _example():
    from hashkit.testing import ComponentExample

    return ComponentExample(inputs=lambda comp: (torch.randn(2, 3, 96, 96), ["features", "fc7"]))


def components(register):
    register("backbone", "alexnet", build_alexnet, config=AlexNetConfig, example=_example)
