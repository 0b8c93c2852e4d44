"""Private helpers shared by the built-in dataset loaders: finding files, reading whitespace-separated
list files, one-hot targets and the split-size check."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch

from hashkit.errors import DataError


def dataset_root(name: str, root: str) -> Path:
    """The configured root as an absolute Path (so every message names a full path); an empty or missing root
    is a DataError naming the config key."""
    if not root:
        raise DataError(f"dataset {name!r}: set data.dataset.root to the directory of the dataset")
    path = Path(root).expanduser().absolute()
    if not path.is_dir():
        raise DataError(f"dataset {name!r}: root directory not found: {path}")
    return path


def require(name: str, root: Path, *relpaths: str) -> list[Path]:
    """The paths ``root/relpath``; the first missing one raises a DataError saying where it was looked for."""
    paths = []
    for rel in relpaths:
        path = root / rel
        if not path.exists():
            raise DataError(f"dataset {name!r}: missing file {rel!r} (looked for {path}); "
                            "is the download complete and data.dataset.root the dataset's top directory?")
        paths.append(path)
    return paths


def read_rows(path: Path, fields: int, *, maxsplit: int | None = None, comments: bool = False) -> list[list[str]]:
    """Non-empty lines of ``path`` split on whitespace (at most ``maxsplit`` times); each must have
    ``fields`` fields (or at least ``fields`` when ``fields`` is negative: ``-2`` = two or more). With
    ``comments``, lines starting with ``#`` are skipped."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line or (comments and line.startswith("#")):
                continue
            parts = line.split(None, maxsplit if maxsplit is not None else -1)
            ok = len(parts) >= -fields if fields < 0 else len(parts) == fields
            if not ok:
                want = f"at least {-fields}" if fields < 0 else str(fields)
                raise DataError(f"{path}:{lineno}: expected {want} fields, found {len(parts)}: {line[:80]!r}")
            rows.append(parts)
    return rows


def parse_int(value: str, path: Path, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DataError(f"{path}: {what} {value!r} is not an integer") from None


def one_hot(labels: Sequence[int], num_classes: int) -> torch.Tensor:
    """float32 ``(n, num_classes)`` one-hot targets of integer labels."""
    t = torch.zeros(len(labels), num_classes, dtype=torch.float32)
    if len(labels):
        t[torch.arange(len(labels)), torch.as_tensor(list(labels), dtype=torch.int64)] = 1.0
    return t


def multi_hot(label_sets: Sequence[Iterable[int]], num_classes: int) -> torch.Tensor:
    """float32 ``(n, num_classes)`` multi-hot targets of label sets."""
    t = torch.zeros(len(label_sets), num_classes, dtype=torch.float32)
    for i, labels in enumerate(label_sets):
        for c in labels:
            t[i, c] = 1.0
    return t


def check_counts(name: str, root: Path, counts: Mapping[str, int], expected: Mapping[str, int] | None,
                 *, option: str = "expected_counts") -> None:
    """Split sizes must equal ``expected`` (the official numbers unless overridden); ``None`` skips the check.

    A mismatch names the dataset, the root, every differing split and how to override (for subsets).
    """
    if expected is None:
        return
    wrong = [f"{split} has {counts.get(split, 0)} images, expected {want}"
             for split, want in expected.items() if counts.get(split, 0) != want]
    if wrong:
        raise DataError(f"dataset {name!r} at {root}: {'; '.join(wrong)} -- a partial or different download? "
                        f"(for a deliberate subset set data.dataset.{option} to the subset's sizes or to {{}})")


def counts_validator(inst, attribute, value):
    """attrs validator of ``expected_counts``: keys among train/query/classes, values >= 0."""
    if value is None:
        return
    bad = sorted(set(value) - {"train", "query", "classes"})
    if bad:
        raise ValueError(f"'{attribute.name}' keys must be train, query or classes, found {bad}")
    if any(v < 0 for v in value.values()):
        raise ValueError(f"'{attribute.name}' values must be >= 0")


def write_tiny_image(path: Path, seed: int, size: int = 8) -> None:
    """A small JPEG (or PNG, by suffix) with seeded noise, for miniature dataset layouts."""
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)


def write_lines(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def dataset_example(write: Callable[[Path], dict[str, Any]]):
    """An ``example=`` for a file-based dataset: ``write(tmp)`` lays out a miniature copy and returns the
    config (``root`` and the miniature's ``expected_counts``)."""

    def example():
        from hashkit.testing import ComponentExample

        return ComponentExample(prepare=write)

    return example


def load_mat(name: str, path: Path) -> dict[str, Any]:
    """A MATLAB ``.mat`` file through scipy (an optional dependency: ``pip install scipy``), squeezed."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise DataError(f"dataset {name!r}: reading {path} needs scipy (pip install scipy), or provide the "
                        "train.txt / test.txt lists described in docs/datasets.md") from None
    try:
        return loadmat(str(path), squeeze_me=True)
    except Exception as exc:  # noqa: BLE001 - scipy raises several types for a bad file
        raise DataError(f"dataset {name!r}: cannot read {path}: {exc}") from None


def read_label_list(path: Path, prefix: str, base: int) -> tuple[list[str], list[int]]:
    """``<relative path> <label>`` rows; items are ``prefix + path``, labels shifted to 0-based by ``base``."""
    items, labels = [], []
    for rel, label in read_rows(path, 2):
        items.append(prefix + rel)
        labels.append(parse_int(label, path, "label") - base)
    return items, labels


def folder_names(items: Sequence[str], labels: Sequence[int], num_classes: int) -> list[str]:
    """Class names taken from the parent folder of each class's first image (its label if it has none)."""
    from pathlib import PurePosixPath

    folder: dict[int, str] = {}
    for rel, label in zip(items, labels):
        folder.setdefault(label, PurePosixPath(rel).parent.name)
    return [folder.get(c, str(c)) for c in range(num_classes)]
