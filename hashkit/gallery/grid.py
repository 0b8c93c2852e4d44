"""A picture grid: rows of framed, captioned cells (PIL only).

Each :class:`Cell` is an image drawn at ``cell x cell`` pixels inside a coloured frame (``FRAMES``: the query,
a relevant result in green, an irrelevant one in red, ``None`` for no frame) with up to two caption lines
under it. :func:`render_grid` lays rows out left to right, leaving a wider gap after ``split_after`` cells
(between a query block and its results), under an optional title line; :class:`GridLayout` says where each
cell's frame is.
"""

from __future__ import annotations

from typing import Sequence

import attrs
from PIL import Image, ImageDraw, ImageFont

FRAMES = {"query": (31, 119, 180), "relevant": (44, 160, 44), "irrelevant": (214, 39, 40),
          "unknown": (127, 127, 127), None: (255, 255, 255)}
BORDER = 4
GAP = 6
BLOCK_GAP = 18
LINE = 14


@attrs.frozen
class Cell:
    image: Image.Image
    caption: tuple[str, ...] = ()
    frame: str | None = None


@attrs.frozen
class GridLayout:
    """Geometry of a grid of ``rows x columns`` cells of ``cell`` pixels (frames ``cell + 2 * BORDER`` wide)."""

    rows: int
    columns: int
    cell: int
    split_after: int = 0
    title: bool = False
    caption_lines: int = 2

    @property
    def box(self) -> int:
        return self.cell + 2 * BORDER

    @property
    def extra(self) -> int:
        return BLOCK_GAP - GAP if 0 < self.split_after < self.columns else 0

    @property
    def top(self) -> int:
        return LINE + 10 if self.title else GAP

    @property
    def row_height(self) -> int:
        return self.box + self.caption_lines * LINE + GAP

    @property
    def size(self) -> tuple[int, int]:
        return GAP + self.columns * (self.box + GAP) + self.extra, self.top + self.rows * self.row_height

    def origin(self, row: int, column: int) -> tuple[int, int]:
        """Top-left pixel of the frame of cell ``(row, column)``."""
        x = GAP + column * (self.box + GAP) + (self.extra if self.split_after and column >= self.split_after else 0)
        return x, self.top + row * self.row_height


def font(size: int = 11):
    """Pillow's bundled font at ``size`` (the bitmap default on Pillow builds without FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow < 10.1
        return ImageFont.load_default()


def fit(text: str, draw: ImageDraw.ImageDraw, face, width: int) -> str:
    """``text`` shortened with an ellipsis to fit ``width`` pixels."""
    if draw.textlength(text, font=face) <= width:
        return text
    while text and draw.textlength(text + "…", font=face) > width:
        text = text[:-1]
    return text + "…"


def render_grid(rows: Sequence[Sequence[Cell]], cell: int = 112, *, title: str = "", split_after: int = 0,
                caption_lines: int = 2) -> Image.Image:
    """The grid as one RGB image (white background)."""
    if not rows:
        raise ValueError("render_grid needs at least one row")
    layout = GridLayout(len(rows), max(len(r) for r in rows), cell, split_after, bool(title), caption_lines)
    face = font(11)
    canvas = Image.new("RGB", layout.size, (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    if title:
        title_face = font(14)
        draw.text((GAP, 4), fit(title, draw, title_face, layout.size[0] - 2 * GAP), fill=(0, 0, 0), font=title_face)
    box = layout.box
    for r, row in enumerate(rows):
        for c, item in enumerate(row):
            x, y = layout.origin(r, c)
            draw.rectangle([x, y, x + box - 1, y + box - 1], fill=FRAMES[item.frame])
            picture = item.image.convert("RGB").resize((cell, cell), Image.Resampling.BICUBIC)
            canvas.paste(picture, (x + BORDER, y + BORDER))
            for i, text in enumerate(item.caption[:caption_lines]):
                draw.text((x, y + box + 1 + i * LINE), fit(text, draw, face, box), fill=(0, 0, 0), font=face)
    return canvas
