"""GDF-Net recipes: defaults, full-size build, and training of the demo and the mixed recipe from their files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import training_helpers as th

from hashkit.assemble import build, build_model
from hashkit.recipe.load import load_recipe

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
DATASETS = {"cub200": "cub200", "stanford_dogs": "stanford_dogs", "stanford_cars": "stanford_cars"}


def test_gdfnet_recipe_has_the_spec_defaults():
    r = load_recipe(RECIPES / "gdfnet.toml")
    assert r.backbone.name == "inception_v3" and r.backbone.config.until == "Mixed_6e" and r.model.tap == "Mixed_6e"
    assert [a.name for a in r.attention] == ["attention_parts"] and r.attention[0].config.num_maps == 32
    inner = r.aggregation.config.inner  # WS-DAN crop/drop views around the kNN-graph aggregation
    assert r.aggregation.name == "wsdan_views" and inner.name == "knn_graph"
    assert (inner.config.k, inner.config.layers, inner.config.dynamic, inner.config.node_pool) == (3, 2, True, "max")
    assert {ref.name: ref.config for ref in r.losses}["cross_entropy"].views == ("crop", "drop")
    head = r.hash_head.config
    assert (head.scale, head.scale_at, head.classifier_on, head.classifier_bias) == (100.0, "input", "logits", False)
    weights = {ref.name: ref.weight for ref in r.losses}
    assert weights == {"cross_entropy": 1.0, "center_loss": 1.0, "cauchy_quantization": 0.1, "bit_balance": 0.01}
    assert r.data.train_transform.crop == 448 and r.data.eval_transform.crop == 448 and r.data.batch_size == 12
    assert (r.optimizer.name, r.optimizer.lr, r.optimizer.momentum, r.optimizer.weight_decay) == ("sgd", 1e-3, 0.9, 1e-5)
    assert (r.schedule.name, r.schedule.step_size, r.schedule.gamma) == ("step", 2, 0.9)
    assert r.protocol.name == "pointwise" and r.protocol.config.epochs == 160
    assert "inferred" in r.provenance


def _coordinate_image(width: int, height: int):
    """RGB image whose red channel is the column and green channel the row, both scaled to 0..255."""
    import numpy as np
    from PIL import Image

    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, np.zeros_like(x)], -1).round().astype(np.uint8))


def _crop_corner(out: torch.Tensor, section) -> tuple[int, int]:
    """(left, top) of the crop in 0..255 coordinates of the source image, read from the output's edges."""
    pixel = out * torch.tensor(section.std)[:, None, None] + torch.tensor(section.mean)[:, None, None]
    return round(float(pixel[0, :, 0].mean()) * 255), round(float(pixel[1, 0, :].mean()) * 255)


def test_gdfnet_train_crops_move_over_wide_images_like_wsdan():
    import attrs
    from torchvision import transforms as T

    from hashkit.data.transforms import build_transform

    section = load_recipe(RECIPES / "gdfnet.toml").data.train_transform
    steps = build_transform(section).transforms
    # WS-DAN get_transform: squash to 512 x 512, RandomCrop 448, flip, ColorJitter(brightness 0.126, saturation 0.5)
    assert [type(t).__name__ for t in steps[1:]] == ["Resize", "RandomCrop", "RandomHorizontalFlip", "ColorJitter",
                                                      "ToTensor", "Normalize"]
    assert steps[1].size == (512, 512) and steps[2].size == (448, 448)
    assert steps[4].brightness == pytest.approx((0.874, 1.126)) and steps[4].saturation == pytest.approx((0.5, 1.5))
    image = _coordinate_image(500, 333)  # CUB / Dogs landscape size
    positional = build_transform(attrs.evolve(section, hflip=False, brightness=0.0, saturation=0.0))
    torch.manual_seed(0)
    corners = {_crop_corner(positional(image), section) for _ in range(12)}
    lefts, tops = {c[0] for c in corners}, {c[1] for c in corners}
    assert len(lefts) >= 4 and len(tops) >= 4, corners
    assert all(0 <= c <= 255 * 64 / 512 + 2 for c in lefts | tops)  # offsets 0..64 of 512
    # the previous pipeline, a square crop of fixed area (448/512)^2, cannot fit a 1.5:1 image: torchvision falls
    # back to the same centre square every time (flip-only augmentation)
    old = build_transform(attrs.evolve(section, crop_mode="random_resized", scale=(0.766, 0.766), ratio=(1.0, 1.0),
                                       hflip=False, brightness=0.0, saturation=0.0))
    assert len({_crop_corner(old(image), section) for _ in range(6)}) == 1


def test_gdfnet_evaluates_the_whole_squashed_image():
    from hashkit.data.transforms import build_transform

    section = load_recipe(RECIPES / "gdfnet.toml").data.eval_transform
    out = build_transform(section)(_coordinate_image(375, 500))  # a portrait Stanford Cars image
    left, top = _crop_corner(out, section)
    # Resize((512, 512)) + CenterCrop(448) starts 32/512 into both axes: both ends of the long side are kept
    assert abs(left - 255 * 32 / 512) <= 2 and abs(top - 255 * 32 / 512) <= 2


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_per_dataset_recipes(dataset):
    r = load_recipe(RECIPES / f"gdfnet-{dataset}.toml")
    assert r.code_lengths == (12, 24, 32, 48)
    assert r.dataset.name == DATASETS[dataset]
    assert r.attention[0].config.num_maps == 32 and r.aggregation.config.inner.config.k == 3


@pytest.mark.slow
def test_gdfnet_full_size_model_builds_and_runs_at_448():
    r = load_recipe(RECIPES / "gdfnet.toml", {"model.backbone.weights": "none"})
    model = build_model(r, 48, num_classes=200).eval()
    assert model.aggregation.descriptor_dims == {"bap": 32 * 768, "graph": 2 * 768 * 32}
    with torch.no_grad():
        out = model(torch.randn(1, 3, 448, 448))
    assert out.maps.shape == (1, 32, 26, 26)
    assert out.descriptor.shape == (1, 3 * 32 * 768) and out.codes.shape == (1, 48)
    assert out.class_logits.shape == (1, 200)


@pytest.mark.slow
def test_mixed_recipe_trains_above_the_untrained_model(tmp_path):
    """mix-sem-knn-cauchy on 30 images per class for its 4 epochs: tie-aware mAP 0.13 -> 0.24 when written."""
    from hashkit.training import train

    r = load_recipe(RECIPES / "mix-sem-knn-cauchy.toml", {"data.dataset.train_per_class": 30,
                                                          "data.dataset.query_per_class": 10, "train.progress": False})
    built = build(r)
    assert [a.name for a in r.attention] == ["sem"] and r.aggregation.name == "knn_graph"
    assert built.model.aggregation.num_maps == 3
    before = th.untrained_scores(r, 16)["encoded"]
    report = train(r, tmp_path / "run")
    after = report["results"]["16"]["selected"]["encoded"]
    assert after["map_tie_aware"] > before["map_tie_aware"] + 0.07, (before, after)
    assert after["map"] > before["map"] + 0.05, (before, after)
    steps = [json.loads(line) for line in (tmp_path / "run" / "L16" / "metrics.jsonl").read_text().splitlines()]
    losses = [s["loss"] for s in steps if s.get("event") == "step"]
    assert losses and all(torch.isfinite(torch.tensor(losses)))


@pytest.mark.slow
def test_demo_trains_well_above_the_untrained_model(tmp_path):
    from hashkit.training import train

    path = RECIPES / "gdfnet-demo.toml"
    before = th.untrained_scores(load_recipe(path), 16)["encoded"]["map"]
    report = train(path, tmp_path / "run")
    after = report["results"]["16"]["selected"]["encoded"]["map"]
    assert after > before + 0.15, (before, after)
