"""Turning uploaded bytes into an RGB image, or a :class:`BadUpload` with the HTTP status to answer.

- empty upload: 400; bytes PIL cannot identify as an image: 415 ("not an image");
- more than ``max_pixels`` pixels (checked from the header, before decoding; PIL's decompression-bomb
  checks too): 413;
- an image that cannot be decoded (truncated, corrupt): 400.

Nothing is written to disk; the bytes are decoded in memory with PIL only.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError


class BadUpload(ValueError):
    """An upload the service refuses: ``status`` is the HTTP status, the message says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def decode_image(data: bytes, name: str = "upload", max_pixels: int = 40_000_000) -> Image.Image:
    """The fully decoded RGB image in ``data``; :class:`BadUpload` otherwise."""
    from hashkit.data.readers import to_rgb

    if not data:
        raise BadUpload(400, f"{name}: the upload is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise BadUpload(413, f"{name}: {width}x{height} pixels is more than the {max(max_pixels, 0):,} "
                                     "accepted (per request)")
            image.load()
    except BadUpload:
        raise
    except UnidentifiedImageError:
        raise BadUpload(415, f"{name}: not an image (no image format recognised in {len(data)} bytes)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadUpload(413, f"{name}: image too large ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise BadUpload(400, f"{name}: cannot decode the image ({exc})") from None
    return to_rgb(image)
