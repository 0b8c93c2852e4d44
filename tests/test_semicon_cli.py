"""``hashkit attention``: PNG overlays of SEM's maps from a (tiny) trained SEMICON demo run."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hashkit.cli.main import main

pytestmark = pytest.mark.slow  # uses the session's tiny demo run (conftest.semicon_tiny_run, ~20 s on 2 cores)


@pytest.fixture
def tiny_run(semicon_tiny_run):
    return semicon_tiny_run


def test_attention_overlays(tiny_run, tmp_path, capsys):
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(images / "a.png")
    Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(images / "sub" / "b.jpg")
    out = tmp_path / "overlays"
    assert main(["attention", str(tiny_run), "--images", str(images), "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"{s}_{m}.png" for s in ("a", "sub__b") for m in ("stage1", "stage2", "stage3", "maps")])
    with Image.open(out / "a_stage2.png") as im:
        assert im.size == (32, 32) and im.mode == "RGB"
    with Image.open(out / "a_maps.png") as im:
        assert im.size == (4 * 32, 32)
    assert "stage1, stage2, stage3" in capsys.readouterr().out


def test_attention_errors(tiny_run, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["attention", str(tiny_run), "--images", str(empty), "--out", str(tmp_path / "o")]) == 2
    assert main(["attention", str(tmp_path / "nope"), "--images", str(empty), "--out", str(tmp_path / "o")]) == 2
