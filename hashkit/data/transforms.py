"""Image transforms from a recipe's :class:`~hashkit.recipe.schema.TransformSection`.

- ``kind = "train"``: ``RandomResizedCrop(crop, scale, ratio)`` (``crop_mode = "random_resized"``, SEMICON's
  pipeline with its defaults) or ``Resize`` + ``RandomCrop(crop)`` (``crop_mode = "random"``, WS-DAN's), then
  ``RandomHorizontalFlip`` (when ``hflip``), ``ColorJitter`` (when any of brightness, contrast, saturation,
  hue is > 0), ``ToTensor``, ``Normalize(mean, std)``.
- ``kind = "eval"``: ``Resize`` + ``CenterCrop(crop)``, ``ToTensor``, ``Normalize``.

``Resize`` scales the shorter side to ``resize`` (``resize_mode = "shorter"``) or squashes the image to
``resize x resize`` (``"square"``, WS-DAN's ``Resize((512, 512))``).

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
    resize = section.resize if section.resize_mode == "shorter" else (section.resize, section.resize)
    if section.kind == "train" and section.crop_mode == "random_resized":
        steps.append(T.RandomResizedCrop(section.crop, scale=tuple(section.scale), ratio=tuple(section.ratio)))
    else:
        if section.crop > section.resize:
            raise RecipeError(f"{section.kind} transform: crop {section.crop} is larger than resize {section.resize}")
        crop = T.RandomCrop(section.crop) if section.kind == "train" else T.CenterCrop(section.crop)
        steps += [T.Resize(resize), crop]
    if section.kind == "train":
        if section.hflip:
            steps.append(T.RandomHorizontalFlip())
        jitter = dict(brightness=section.brightness, contrast=section.contrast, saturation=section.saturation,
                      hue=section.hue)
        if any(jitter.values()):
            steps.append(T.ColorJitter(**jitter))
    steps += [T.ToTensor(), T.Normalize(list(section.mean), list(section.std))]
    return T.Compose(steps)
