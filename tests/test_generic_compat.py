"""The generic recipes' networks load the reference networks' state dicts one to one, with equal parameter
counts, and then compute the same raw hash-layer outputs: DeepHash-pytorch's ``AlexNet(hash_bit)`` and
``ResNet(hash_bit)`` (network.py), DSH_Analysis's ``resnet50(num_classes = L)`` (models/resnet.py). The
reference networks are rebuilt here from torchvision modules with the reference's names (no download)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import hashkit
from hashkit.assemble import build_model
from hashkit.errors import CheckpointError
from hashkit_plugins.generic_compat import load_reference_state_dict

ROOT = Path(__file__).resolve().parent.parent
L = 12
NO_WEIGHTS = {"model.backbone.weights": "none"}


class DeepHashAlexNet(nn.Module):
    """network.AlexNet's layout: ``features`` then ``hash_layer = [Dropout, fc6, ReLU, Dropout, fc7, ReLU, Linear]``."""

    def __init__(self, bits):
        super().__init__()
        tv = torchvision.models.alexnet(weights=None)
        self.features = tv.features
        self.hash_layer = nn.Sequential(nn.Dropout(), tv.classifier[1], nn.ReLU(inplace=True), nn.Dropout(),
                                        tv.classifier[4], nn.ReLU(inplace=True), nn.Linear(4096, bits))

    def forward(self, x):
        return self.hash_layer(self.features(x).view(x.size(0), 256 * 6 * 6))


class DeepHashResNet(nn.Module):
    """network.ResNet's layout: torchvision names, the same modules again as ``feature_layers``, ``hash_layer``."""

    def __init__(self, bits):
        super().__init__()
        tv = torchvision.models.resnet50(weights=None)
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool"):
            setattr(self, name, getattr(tv, name))
        self.feature_layers = nn.Sequential(self.conv1, self.bn1, self.relu, self.maxpool, self.layer1,
                                            self.layer2, self.layer3, self.layer4, self.avgpool)
        self.hash_layer = nn.Linear(2048, bits)
        self.hash_layer.weight.data.normal_(0, 0.01)
        self.hash_layer.bias.data.fill_(0.0)

    def forward(self, x):
        return self.hash_layer(self.feature_layers(x).view(x.size(0), -1))


def _count(module):
    return sum(p.numel() for p in module.parameters())


def _check(reference, model, x):
    torch.manual_seed(0)
    for p in reference.parameters():  # non-default values, so a wrong mapping shows
        p.data.add_(torch.randn_like(p) * 0.01)
    loaded = load_reference_state_dict(model, reference.state_dict())
    assert len(loaded) == len(model.state_dict())
    assert _count(model) == _count(reference)
    reference.eval()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, reference(x), rtol=1e-4, atol=1e-5)


def test_deephash_alexnet_loads_one_to_one_and_computes_the_same_logits():
    recipe = hashkit.load_recipe(ROOT / "recipes" / "generic" / "dpsh.toml",
                                 {"model.backbone.name": "alexnet", "model.backbone.weights": "none", "model.tap": "fc7",
                                  "model.hash_head.init_std": 0.0,
                                  "code_lengths": [L]})
    model = build_model(recipe, L, num_classes=10)
    assert _count(model) == 57_003_840 + 4097 * L
    _check(DeepHashAlexNet(L), model, torch.randn(1, 3, 224, 224))


@pytest.fixture(scope="module")
def resnet_model():
    """The ResNet-50 + gap + linear model shared by the DeepHash-pytorch and DSH_Analysis recipes."""
    recipe = hashkit.load_recipe(ROOT / "recipes" / "generic" / "csq.toml", {**NO_WEIGHTS, "code_lengths": [L]})
    return build_model(recipe, L, num_classes=10)


def test_deephash_resnet_loads_one_to_one_and_computes_the_same_logits(resnet_model):
    assert _count(resnet_model) == 23_508_032 + 2049 * L
    _check(DeepHashResNet(L), resnet_model, torch.randn(2, 3, 64, 64))


def test_dsh_analysis_resnet_loads_one_to_one(resnet_model):
    dsa = hashkit.load_recipe(ROOT / "recipes" / "generic" / "dsa-hashnet.toml", {**NO_WEIGHTS, "code_lengths": [L]})
    assert (dsa.backbone.name, dsa.model.tap, dsa.aggregation.name, dsa.hash_head.name) == \
        ("resnet50", "layer4", "gap", "linear")  # the fixture's architecture (its head init is overwritten)
    reference = torchvision.models.resnet50(weights=None, num_classes=L)  # models/resnet.py uses torchvision's names
    _check(reference, resnet_model, torch.randn(2, 3, 64, 64))


def test_a_mismatched_state_dict_is_a_clean_error(resnet_model):
    state = DeepHashResNet(L).state_dict()
    state.pop("hash_layer.bias")
    with pytest.raises(CheckpointError, match="missing .*hash_head.hash.0.bias"):
        load_reference_state_dict(resnet_model, state)
    with pytest.raises(CheckpointError, match="no hashkit counterpart"):
        load_reference_state_dict(resnet_model, {"something.else": torch.zeros(1)})
