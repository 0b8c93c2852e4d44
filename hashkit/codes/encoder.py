"""Encoding images with a trained model: ``encode_images`` (lists of files, batches, bad files) and the one-call
``hashkit.encode(model_or_run, images)``.

Both run the model in eval mode (restored afterwards) with the recipe's evaluation transform. An image that
cannot be read raises :class:`~hashkit.errors.DataError` naming it, or, with ``skip_bad_images``, is left out
and listed in :attr:`EncodedImages.skipped`. Images are read in DataLoader workers when ``num_workers > 0``;
a worker hands a read error back as a value, so the error reaches the caller as one clean line.

Codes depend only on the image itself unless a component declares ``eval_batch_dependent``
(:mod:`hashkit.model.capabilities`; SEM with ``sigma = "batch"``); then :func:`batch_warning` gives the line
the commands print: an image encoded alone may get another code than inside a batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import attrs
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from hashkit.codes.binarize import binarize
from hashkit.errors import ContractError, DataError
from hashkit.interfaces.dataset import ImageReader


@attrs.define
class EncodedImages:
    """±1 codes ``(k, L)`` of the ``k`` images that were read, their positions in the input list, the
    ``(item, reason)`` of the images left out, and (when asked) their descriptors ``(k, D)``."""

    codes: Tensor
    indices: list[int]
    skipped: list[tuple[str, str]] = attrs.field(factory=list)
    descriptors: Tensor | None = None


class _Items(Dataset):
    """``(image tensor or None, position, error message or None)`` per item (picklable for workers)."""

    def __init__(self, reader: ImageReader, items: Sequence[Any], transform: Callable):
        self.reader, self.items, self.transform = reader, items, transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        try:
            return self.transform(self.reader(self.items[i])), i, None
        except DataError as exc:
            return None, i, str(exc)


def _as_list(batch):
    return batch


def batch_warning(model: nn.Module) -> str | None:
    """A warning line when ``model``'s codes depend on the batch (what ``encode`` and ``search`` print)."""
    from hashkit.model.capabilities import batch_dependent_components

    names = batch_dependent_components(model)
    if not names:
        return None
    return (f"this model's codes depend on the other images in a batch ({', '.join(names)}): an image encoded "
            "alone or in another batch can get another code, so a search may not find an image's own code at "
            "distance 0 (for batch-independent codes train with e.g. sem sigma = \"image\" or \"running\")")


@torch.no_grad()
def encode_images(model: nn.Module, transform: Callable, reader: ImageReader, items: Sequence[Any], *,
                  batch_size: int = 64, num_workers: int = 0, device: torch.device | str = "cpu",
                  progress: bool = False, skip_bad_images: bool = False, descriptors: bool = False,
                  desc: str = "encode", on_progress: Callable[[int], None] | None = None) -> EncodedImages:
    """Encode ``items`` (read by ``reader``) in file order; see the module docstring.

    ``on_progress(n)`` is called after each batch of ``n`` items (instead of showing a bar of its own).
    """
    from hashkit.progress import progress_bar

    device = torch.device(device)
    loader = DataLoader(_Items(reader, items, transform), batch_size=batch_size, num_workers=num_workers,
                        shuffle=False, collate_fn=_as_list)
    was_training = model.training
    model.to(device).eval()
    codes, descs, kept, skipped = [], [], [], []
    zero_to = getattr(model, "zero_to", "plus_one")
    try:
        with progress_bar(total=len(items), desc=desc, unit="image", enabled=progress and on_progress is None) as bar:
            for batch in loader:
                good = []
                for image, i, error in batch:
                    if error is None:
                        good.append((image, i))
                    elif skip_bad_images:
                        skipped.append((items[i], error))
                    else:
                        raise DataError(f"{error} (pass --skip-bad-images to leave unreadable images out)")
                if good:
                    out = model(torch.stack([g[0] for g in good]).to(device))
                    if out.codes is None:
                        raise ContractError("this model has no hash head: it gives descriptors, not codes")
                    codes.append(binarize(out.codes.float(), zero_to=zero_to).cpu())
                    if descriptors:
                        descs.append(out.descriptor.float().cpu())
                    kept.extend(g[1] for g in good)
                bar.update(len(batch))
                if on_progress is not None:
                    on_progress(len(batch))
    finally:
        model.train(was_training)
    width = model.code_length if getattr(model, "code_length", None) else 0
    return EncodedImages(codes=torch.cat(codes) if codes else torch.zeros(0, width), indices=kept, skipped=skipped,
                         descriptors=(torch.cat(descs) if descs else torch.zeros(0, model.descriptor_dim))
                         if descriptors else None)


class _PILOrPathReader(ImageReader):
    """Items that are PIL images (used as they are, converted to RGB) or paths (opened like dataset files)."""

    def __call__(self, item):
        from PIL import Image

        from hashkit.data.readers import FileImageReader, to_rgb

        if isinstance(item, Image.Image):
            return to_rgb(item)
        path = Path(item)
        return FileImageReader(path.parent)(path.name)

    def describe(self, item) -> str:
        return str(item)


def encode(model_or_run: Any, images: Sequence[Any], *, transform: Callable | None = None, batch_size: int = 64,
           device: torch.device | str | None = None, descriptors: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """±1 codes ``(n, L)`` of ``images`` (file paths and/or PIL images) in one call.

    ``model_or_run`` is a run directory, a :class:`~hashkit.runs.LoadedRun` or a model (a
    :class:`~hashkit.HashingModel`). The transform is the run's evaluation transform, or for a bare model
    ``transform`` (default: resize 256, centre crop 224, ImageNet normalisation). The model runs in eval mode.
    With ``descriptors=True`` returns ``(codes, descriptors (n, D))``.
    """
    from hashkit.data.transforms import build_transform
    from hashkit.recipe.schema import TransformSection
    from hashkit.runs import LoadedRun, load_run

    if isinstance(model_or_run, (str, Path)):
        model_or_run = load_run(model_or_run)
    if isinstance(model_or_run, LoadedRun):
        transform = transform or build_transform(model_or_run.recipe.data.eval_transform)
        model = model_or_run.model
    else:
        model = model_or_run
        transform = transform or build_transform(TransformSection(kind="eval"))
    if device is None:
        device = next(model.parameters()).device
    result = encode_images(model, transform, _PILOrPathReader(), list(images), batch_size=batch_size,
                           device=device, descriptors=descriptors)
    return (result.codes, result.descriptors) if descriptors else result.codes
