"""Picklable image readers: :class:`FileImageReader` (files under a root) and :class:`ArrayImageReader`
(in-memory ``uint8`` arrays). Both return RGB ``PIL.Image`` objects and raise
:class:`~hashkit.errors.DataError` naming the image when it cannot be read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from hashkit.errors import DataError
from hashkit.interfaces.dataset import ImageReader


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB; transparent pixels (RGBA, LA, P with transparency) go onto white."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


class FileImageReader(ImageReader):
    """Opens ``root / item`` with PIL, fully decodes it and converts it to RGB.

    Picklable (it holds only the root path), so DataLoader workers can use it. A missing, truncated or
    undecodable file raises :class:`DataError` with its full path.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, item: str) -> Path:
        return self.root / item

    def describe(self, item: str) -> str:
        return str(self.path(item))

    def __call__(self, item: str) -> Image.Image:
        path = self.path(item)
        try:
            with Image.open(path) as img:
                img.load()
                return to_rgb(img)
        except FileNotFoundError:
            raise DataError(f"image not found: {path}") from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise DataError(f"cannot read image {path}: {exc}") from None

    def __repr__(self) -> str:
        return f"FileImageReader({str(self.root)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, FileImageReader) and other.root == self.root

    def __hash__(self) -> int:
        return hash(("FileImageReader", self.root))


class ArrayImageReader(ImageReader):
    """Images held in memory: ``images`` is ``uint8`` ``(n, H, W)`` (gray) or ``(n, H, W, 3)`` (RGB); item
    strings are the decimal row numbers (``"0"``, ``"1"``, ...). Gray images are repeated to RGB.

    ``name`` appears in error messages (e.g. the ``.npz`` file the arrays came from).
    """

    def __init__(self, images: np.ndarray, name: str = "<array>"):
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3):
            raise DataError(f"{name}: expected uint8 images (n, H, W) or (n, H, W, 3), "
                            f"got {images.dtype} {images.shape}")
        self.images = images
        self.name = name

    def describe(self, item: str) -> str:
        return f"{self.name}[{item}]"

    def __call__(self, item: str) -> Image.Image:
        try:
            row = int(item)
            if not 0 <= row < len(self.images):
                raise IndexError(row)
        except (ValueError, IndexError):
            raise DataError(f"{self.describe(item)}: no such image (the array holds {len(self.images)})") from None
        arr = self.images[row]
        return Image.fromarray(np.ascontiguousarray(arr)).convert("RGB")

    def __repr__(self) -> str:
        return f"ArrayImageReader({self.name!r}, {tuple(self.images.shape)})"
