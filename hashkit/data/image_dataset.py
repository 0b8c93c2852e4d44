"""``ImageDataset``: a ``torch.utils.data.Dataset`` over one :class:`~hashkit.interfaces.Split`.

``dataset[i] -> (image (3, H, W) float32, target (C,) float32, index int)``; ``index`` is the position in
the split, which training protocols (ADSH's learned database codes) use to find an image's state.

Bad images [inferred design]
----------------------------
By default an image that cannot be read raises :class:`~hashkit.errors.DataError` naming its path.

With ``skip_bad_images=True`` a bad image is *substituted*: item ``i`` returns the next readable item
(``i+1, i+2, ...``, wrapping around) with **that** item's target and index, so a batch always has the size
the sampler asked for and every returned (image, target, index) triple is consistent. The bad position is
recorded in :attr:`ImageDataset.bad_items` (``{index: message}``), a warning names the file once, and later
epochs skip it without trying to read it again. In DataLoader worker processes the record lives in the
worker's copy; call :meth:`ImageDataset.scan` in the main process to find (and count) every bad image up
front, which also means no substitution is needed afterwards for a readable dataset.
"""

from __future__ import annotations

import warnings
from typing import Callable

from torch import Tensor
from torch.utils.data import Dataset

from hashkit.errors import DataError
from hashkit.interfaces.dataset import Split


class ImageDataset(Dataset):
    """Images of ``split`` through ``transform`` (a PIL image -> ``(3, H, W)`` tensor callable)."""

    def __init__(self, split: Split, transform: Callable | None = None, skip_bad_images: bool = False):
        self.split = split
        self.transform = transform
        self.skip_bad_images = skip_bad_images
        #: index -> error message of every image found unreadable (only with skip_bad_images)
        self.bad_items: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.split)

    @property
    def num_bad(self) -> int:
        return len(self.bad_items)

    def _load(self, index: int) -> Tensor:
        img = self.split.reader(self.split.items[index])
        if self.transform is None:
            from torchvision.transforms.functional import pil_to_tensor

            return pil_to_tensor(img).float().div_(255)
        return self.transform(img)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, int]:
        n = len(self)
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for a split of {n} images")
        if not self.skip_bad_images:
            return self._load(index), self.split.targets[index], index
        for step in range(n):
            j = (index + step) % n
            if j in self.bad_items:
                continue
            try:
                return self._load(j), self.split.targets[j], j
            except DataError as exc:
                self._mark_bad(j, str(exc))
        raise DataError(f"every image of the split is unreadable ({n} images; first: "
                        f"{self.split.reader.describe(self.split.items[0])})")

    def _mark_bad(self, index: int, message: str) -> None:
        self.bad_items[index] = message
        warnings.warn(f"skipping bad image ({len(self.bad_items)} so far): {message}", RuntimeWarning, stacklevel=3)

    def scan(self) -> dict[int, str]:
        """Read every image once (no transform); returns ``{index: message}`` of the unreadable ones.

        Without ``skip_bad_images`` the first bad image raises; with it, all are recorded and counted.
        """
        for i, item in enumerate(self.split.items):
            if i in self.bad_items:
                continue
            try:
                self.split.reader(item)
            except DataError as exc:
                if not self.skip_bad_images:
                    raise
                self._mark_bad(i, str(exc))
        return dict(self.bad_items)

