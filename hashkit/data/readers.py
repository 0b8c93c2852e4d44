"""Picklable image readers: :class:`FileImageReader` (files under a root) and :class:`ArrayImageReader`
(in-memory ``uint8`` arrays). Both return RGB ``PIL.Image`` objects and raise
:class:`~hashkit.errors.DataError` naming the image when it cannot be read.

Large images: a file whose header declares more pixels than :func:`max_image_pixels` is refused before it is
decoded (a guard against decompression bombs, as PIL's own). The limit defaults to the size PIL refuses
(twice ``PIL.Image.MAX_IMAGE_PIXELS``, 178,956,970 pixels) and is set with the environment variable
``HASHKIT_MAX_IMAGE_PIXELS`` (``0`` = no limit), which the ``--max-image-pixels`` option of the commands that
read images sets; DataLoader workers inherit it.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from hashkit.errors import DataError
from hashkit.interfaces.dataset import ImageReader

#: environment variable holding the pixel limit (an integer; 0 = no limit)
MAX_PIXELS_ENV = "HASHKIT_MAX_IMAGE_PIXELS"
_PIL_LIMIT_LOCK = threading.Lock()


def max_image_pixels() -> int | None:
    """The largest image (width x height) the readers open; ``None`` = no limit."""
    value = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if value:
        try:
            limit = int(value.replace("_", ""))
        except ValueError:
            raise DataError(f"{MAX_PIXELS_ENV}={value!r} is not an integer (0 = no limit)") from None
        return limit if limit > 0 else None
    return 2 * Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS else None


def open_image(path: Path) -> Image.Image:
    """Open and fully decode ``path`` after checking its size against :func:`max_image_pixels`."""
    limit = max_image_pixels()
    with _PIL_LIMIT_LOCK:  # PIL's own guard is replaced by ours for the duration of the open
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            img = Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    with img:
        width, height = img.size
        if limit is not None and width * height > limit:
            raise DataError(f"image {path} is {width}x{height} = {width * height:,} pixels, more than the limit of "
                            f"{limit:,} (a guard against decompression bombs); raise it with --max-image-pixels N "
                            f"or {MAX_PIXELS_ENV}=N (0 = no limit)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
        return to_rgb(img)


#: modes with an alpha channel (premultiplied ``La``/``RGBa`` included), composited onto white
_ALPHA_MODES = {"RGBA", "LA", "PA", "La", "RGBa"}


def _wide_to_8bit(img: Image.Image) -> Image.Image:
    """A 16-bit (``I;16*``), 32-bit integer (``I``) or float (``F``) gray image as 8-bit ``L``.

    - ``I;16``, ``I;16B``, ``I;16L``, ``I;16N`` and ``I``: the 16-bit range 0..65535 maps linearly onto
      0..255 (``round(v / 257)``); ``I`` values outside 0..65535 are clipped;
    - ``F``: values in [0, 1] are scaled by 255; an image with any value above 1 is taken as already on the
      0..255 scale; both are clipped to 0..255.
    """
    arr = np.asarray(img)
    if img.mode == "F":
        arr = arr.astype(np.float64)
        finite = arr[np.isfinite(arr)]
        scale = 255.0 if finite.size == 0 or finite.max() <= 1.0 else 1.0
        out = np.nan_to_num(arr * scale, nan=0.0, posinf=255.0, neginf=0.0)
    else:
        out = np.clip(arr.astype(np.float64), 0, 65535) / 257.0
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), mode="L")


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB.

    - ``RGB``: unchanged; ``L``, ``1``, ``P`` (opaque), ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ``RGBX``: PIL's
      conversion;
    - 16-bit, 32-bit integer and float gray images (``I;16*``, ``I``, ``F``): scaled to 8 bits first (see
      :func:`_wide_to_8bit`), never clipped at 255;
    - alpha (``RGBA``, ``LA``, ``PA``, premultiplied ``RGBa``/``La``, ``P`` or ``L`` with a transparency
      entry): composited onto white.
    """
    if img.mode == "RGB":
        return img
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        return _wide_to_8bit(img).convert("RGB")
    if img.mode in _ALPHA_MODES or (img.mode in ("P", "L") and "transparency" in img.info):
        rgba = (img.convert("LA") if img.mode == "La" else img).convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    try:
        return img.convert("RGB")
    except (ValueError, OSError) as exc:
        raise DataError(f"image mode {img.mode!r} cannot be converted to RGB ({exc})") from None


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
            return open_image(path)
        except DataError:
            raise
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
