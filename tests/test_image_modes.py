"""Every PIL image mode becomes correct 8-bit RGB: 16-bit and float images are scaled (not clipped at 255),
alpha is composited onto white, palettes are looked up. Expected values are computed by hand here."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hashkit.data.readers import FileImageReader, to_rgb


def rgb(img: Image.Image) -> np.ndarray:
    out = to_rgb(img)
    assert out.mode == "RGB" and out.size == img.size
    return np.asarray(out).astype(int)


def gray(values: np.ndarray) -> np.ndarray:
    """Expected RGB of gray values: three equal channels."""
    return np.repeat(np.asarray(values, dtype=int)[..., None], 3, axis=-1)


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    """The reported case: a 16-bit gradient PNG read through the dataset reader has mean 127.5, not ~255."""
    values = (np.arange(256 * 256, dtype=np.uint32).reshape(256, 256)).astype(np.uint16)  # 0..65535
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    out = np.asarray(FileImageReader(tmp_path)("g16.png")).astype(int)
    expected = np.floor(values.astype(np.float64) / 257 + 0.5).astype(int)   # round half up; no .5 ties here
    assert np.array_equal(out, gray(expected))
    assert abs(out.mean() - 127.5) < 0.01


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L"])
def test_16_bit_modes(mode):
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)          # -> 0, 1, 128, 255
    img = Image.frombytes(mode, (4, 1), values.astype(">u2" if mode == "I;16B" else "<u2").tobytes())
    assert np.array_equal(rgb(img), gray([[0, 1, 128, 255]]))


def test_32_bit_integer_mode_uses_the_16_bit_range():
    img = Image.fromarray(np.array([[-5, 0, 514, 65535, 70000]], dtype=np.int32), mode="I")
    assert np.array_equal(rgb(img), gray([[0, 0, 2, 255, 255]]))


def test_float_mode_unit_range_and_byte_range():
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0, -0.2]], dtype=np.float32), mode="F")
    assert np.array_equal(rgb(unit), gray([[0, 128, 255, 0]]))   # 127.5 rounds to even (128)
    byte = Image.fromarray(np.array([[0.0, 0.5, 200.0, 300.0]], dtype=np.float32), mode="F")
    assert np.array_equal(rgb(byte), gray([[0, 0, 200, 255]]))


def test_bilevel_gray_and_palette():
    assert np.array_equal(rgb(Image.fromarray(np.array([[0, 255]], dtype=np.uint8)).convert("1")),
                          gray([[0, 255]]))
    assert np.array_equal(rgb(Image.fromarray(np.array([[7, 200]], dtype=np.uint8), mode="L")), gray([[7, 200]]))
    pal = Image.new("P", (2, 1))
    pal.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    pal.putpixel((1, 0), 1)
    assert rgb(pal).tolist() == [[[10, 20, 30], [200, 100, 50]]]


def test_alpha_is_composited_onto_white():
    rgba = Image.fromarray(np.array([[[255, 0, 0, 255], [255, 0, 0, 0], [0, 0, 255, 128]]], dtype=np.uint8), "RGBA")
    # 50 % blue over white: 255 * (1 - 128/255) = 127 (PIL rounds the blend), 255 blue
    out = rgb(rgba)
    assert out[0, 0].tolist() == [255, 0, 0] and out[0, 1].tolist() == [255, 255, 255]
    assert np.allclose(out[0, 2], [127, 127, 255], atol=1)
    la = Image.fromarray(np.array([[[40, 255], [40, 0]]], dtype=np.uint8), "LA")
    assert rgb(la).tolist() == [[[40, 40, 40], [255, 255, 255]]]
    assert rgb(la.convert("La")).tolist() == [[[40, 40, 40], [255, 255, 255]]]
    assert rgb(rgba.convert("RGBa"))[0, :2].tolist() == [[255, 0, 0], [255, 255, 255]]
    pal = Image.new("P", (2, 1))
    pal.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    pal.putpixel((1, 0), 1)
    pal.info["transparency"] = 1
    assert rgb(pal).tolist() == [[[10, 20, 30], [255, 255, 255]]]
    assert rgb(pal.convert("PA")).tolist() == [[[10, 20, 30], [255, 255, 255]]]
    gray_t = Image.fromarray(np.array([[9, 50]], dtype=np.uint8), "L")
    gray_t.info["transparency"] = 50
    assert rgb(gray_t).tolist() == [[[9, 9, 9], [255, 255, 255]]]


@pytest.mark.parametrize("mode, pixel, expected", [
    ("CMYK", (0, 0, 0, 0), (255, 255, 255)),
    ("CMYK", (255, 0, 0, 0), (0, 255, 255)),      # full cyan
    ("YCbCr", (255, 128, 128), (255, 255, 255)),
    ("HSV", (0, 255, 255), (255, 0, 0)),           # hue 0 = red
    ("HSV", (85, 255, 255), (0, 255, 0)),          # hue 120 degrees = green
    ("RGBX", (1, 2, 3, 0), (1, 2, 3)),
])
def test_other_colour_spaces(mode, pixel, expected):
    assert rgb(Image.new(mode, (1, 1), pixel)).tolist() == [[list(expected)]]


def test_lab_white_is_white():
    out = rgb(Image.new("LAB", (1, 1), (255, 128, 128)))
    assert np.all(np.abs(out - 255) <= 1)
