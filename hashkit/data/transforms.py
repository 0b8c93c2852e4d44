"""Image transforms from a recipe's :class:`~hashkit.recipe.schema.TransformSection`.

- ``kind = "train"``: ``RandomResizedCrop(crop, scale, ratio)`` + ``RandomHorizontalFlip`` (when ``hflip``),
  ``ToTensor``, ``Normalize(mean, std)`` -- SEMICON's training pipeline with its defaults.
- ``kind = "eval"``: ``Resize(resize)`` (shorter side) + ``CenterCrop(crop)``, ``ToTensor``, ``Normalize``.

Every pipeline starts by converting the image to RGB, so grayscale inputs (the demo data) come out with 3
identical channels. Output: float32 ``(3, crop, crop)``. The transform is picklable (DataLoader workers).
"""

from __future__ import annotations

from torchvision import transforms as T

from hashkit.errors import RecipeError
from hashkit.recipe.schema import TransformSection


class ToRGB:
    """PIL image -> RGB PIL image (gray repeated to three channels, alpha composited on white)."""

    def __call__(self, img):
        from hashkit.data.readers import to_rgb

        return to_rgb(img)

    def __repr__(self) -> str:
        return "ToRGB()"


def build_transform(section: TransformSection) -> T.Compose:
    """The recipe's train or eval pipeline: PIL image -> normalised float tensor ``(3, crop, crop)``."""
    if section.crop <= 0 or section.resize <= 0:
        raise RecipeError(f"transform sizes must be > 0 (resize = {section.resize}, crop = {section.crop})")
    lo, hi = section.scale
    if not 0 < lo <= hi <= 1:
        raise RecipeError(f"transform scale must satisfy 0 < min <= max <= 1, found {tuple(section.scale)}")
    if not 0 < section.ratio[0] <= section.ratio[1]:
        raise RecipeError(f"transform ratio must satisfy 0 < min <= max, found {tuple(section.ratio)}")
    steps: list = [ToRGB()]
    if section.kind == "train":
        steps.append(T.RandomResizedCrop(section.crop, scale=tuple(section.scale), ratio=tuple(section.ratio)))
        if section.hflip:
            steps.append(T.RandomHorizontalFlip())
    else:
        if section.crop > section.resize:
            raise RecipeError(f"eval transform: crop {section.crop} is larger than resize {section.resize}")
        steps += [T.Resize(section.resize), T.CenterCrop(section.crop)]
    steps += [T.ToTensor(), T.Normalize(list(section.mean), list(section.std))]
    return T.Compose(steps)
