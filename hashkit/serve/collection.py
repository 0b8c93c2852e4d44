"""The served database: code files by code length, exact Hamming search and safe access to the image files.

A :class:`CodeIndex` holds one code file (``hashkit encode`` output): packed codes in an exact popcount
backend (the one ``hashkit search`` uses, so results are identical: sorted by distance, ties by insertion
order), the ids, relative paths and a label per item. Labels [inferred design]: the first directory of the
relative path (an ImageFolder-style ``class/image.jpg`` layout), else the class indices of the file's
``labels`` tensor, else empty.

:meth:`Collection.image_path` maps an id to its file under the image root and refuses anything that resolves
outside the root (``..`` components, absolute paths or symbolic links leading out): the service reads only the
configured folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import attrs
import numpy as np
import torch

from hashkit.codes.code_file import CodeFile
from hashkit.codes.packing import num_bytes
from hashkit.errors import CodeFileError, ContractError


class NotFound(LookupError):
    """An id, code length or file the collection does not have (HTTP 404)."""


@attrs.frozen
class Hit:
    id: int
    path: str
    distance: int
    label: str


def item_label(path: str | None, labels: torch.Tensor | None) -> str:
    """The label shown for an item (see the module docstring)."""
    if path:
        parts = Path(path).parts
        if len(parts) > 1:
            return parts[0]
    if labels is not None:
        return "+".join(str(i) for i in torch.nonzero(labels > 0).flatten().tolist())
    return ""


class CodeIndex:
    """One code file, searchable by packed code."""

    def __init__(self, code_file: CodeFile, source: str = ""):
        from hashkit.search import make_backend

        self.source = source
        self.num_bits = code_file.num_bits
        self.ids = code_file.ids.numpy().astype(np.int64)
        self.codes = code_file.codes.numpy()
        self.paths: tuple[str, ...] | None = code_file.paths
        self.metadata = dict(code_file.metadata)
        self.position = {int(i): p for p, i in enumerate(self.ids.tolist())}
        self.labels = [item_label(code_file.paths[p] if code_file.paths else None,
                                  code_file.labels[p] if code_file.labels is not None else None)
                       for p in range(len(self.ids))]
        self.backend = make_backend("exact", self.num_bits)
        self.backend.add(self.codes, self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def path(self, item_id: int) -> str:
        return self.paths[self.position[item_id]] if self.paths else str(item_id)

    def code_of(self, item_id: int) -> np.ndarray:
        """Packed code ``(1, bytes)`` of a database item."""
        if item_id not in self.position:
            raise NotFound(f"no item with id {item_id} in the {self.num_bits}-bit codes")
        p = self.position[item_id]
        return self.codes[p:p + 1]

    def hit(self, item_id: int, distance: int) -> Hit:
        return Hit(int(item_id), self.path(int(item_id)), int(distance), self.labels[self.position[int(item_id)]])

    def search(self, packed: np.ndarray, k: int, radius: int | None = None, limit: int | None = None
               ) -> list[list[Hit]]:
        """Per query: the ``k`` nearest items, or the items within Hamming distance ``radius`` (inclusive),
        nearest first, at most ``limit`` of them."""
        if radius is not None:
            res = self.backend.radius(packed, radius)
            return [[self.hit(i, d) for i, d in zip(*(part[:limit] for part in res.query(q)))]
                    for q in range(len(packed))]
        res = self.backend.knn(packed, k)
        return [[self.hit(i, d) for i, d in zip(ids, dist) if i >= 0] for ids, dist in zip(res.ids, res.distances)]


def parse_code(value, num_bits: int) -> np.ndarray:
    """One query code ``(bytes,)`` uint8 from a hex string of the packed bytes (``hashkit.codes.packing``
    layout) or a list of ``num_bits`` values in ``{-1, +1}``; :class:`ContractError` on anything else."""
    from hashkit.codes.code_file import padding_mask
    from hashkit.codes.packing import pack_codes

    if isinstance(value, str):
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise ContractError(f"code {value[:40]!r} is not a hex string") from None
        if len(raw) != num_bytes(num_bits):
            raise ContractError(f"a {num_bits}-bit code is {num_bytes(num_bits)} bytes ({2 * num_bytes(num_bits)} hex "
                                f"digits), found {len(raw)}")
        packed = np.frombuffer(raw, dtype=np.uint8)
        if packed[-1] & padding_mask(num_bits):
            raise ContractError(f"the padding bits after bit {num_bits} must be zero")
        return packed.copy()
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        if len(value) != num_bits:
            raise ContractError(f"a {num_bits}-bit code needs {num_bits} values, found {len(value)}")
        bad = [v for v in value if v not in (-1, 1)]
        if bad:
            raise ContractError(f"code values must be -1 or +1, found {bad[0]!r}")
        return pack_codes(np.asarray([value], dtype=np.float32)).numpy()[0]
    raise ContractError("a code is a hex string of its packed bytes or a list of -1/+1 values")


class Collection:
    """The code files served, by code length, and the image folder behind their paths."""

    def __init__(self, indexes: Iterable[CodeIndex], image_root: Path | None):
        self.indexes: dict[int, CodeIndex] = {}
        for index in indexes:
            if index.num_bits in self.indexes:
                raise CodeFileError(f"{index.source}: a second code file with {index.num_bits}-bit codes "
                                    f"({self.indexes[index.num_bits].source} has them too)")
            self.indexes[index.num_bits] = index
        if not self.indexes:
            raise CodeFileError("no code files to serve")
        self.image_root = Path(image_root).resolve() if image_root is not None else None

    @property
    def code_lengths(self) -> list[int]:
        return sorted(self.indexes)

    def index(self, bits: int | None) -> CodeIndex:
        if bits is None:
            return self.indexes[self.code_lengths[0]]
        if bits not in self.indexes:
            raise NotFound(f"no {bits}-bit codes are served (code lengths: "
                           f"{', '.join(map(str, self.code_lengths))})")
        return self.indexes[bits]

    def image_path(self, bits: int | None, item_id: int) -> Path:
        """The file of item ``item_id``, inside the image root (else :class:`NotFound`)."""
        index = self.index(bits)
        if item_id not in index.position:
            raise NotFound(f"no item with id {item_id} in the {index.num_bits}-bit codes")
        if self.image_root is None or index.paths is None:
            raise NotFound("no image folder is configured (--images) or the code file records no paths")
        return safe_join(self.image_root, index.path(item_id))


def safe_join(root: Path, relative: str) -> Path:
    """``root / relative`` resolved, or :class:`NotFound` when it leaves ``root`` or is not a file."""
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or candidate == root:
        raise NotFound(f"{relative!r} is outside the image folder")
    if not candidate.is_file():
        raise NotFound(f"{relative!r} is not a file in the image folder")
    return candidate


def page_of_items(index: CodeIndex, offset: int, limit: int) -> list[dict]:
    """Items ``offset .. offset+limit-1`` (positions, wrapping around) as ``{id, path, label}``."""
    n = len(index)
    out = []
    for p in range(offset, offset + min(limit, n)):
        item_id = int(index.ids[p % n])
        out.append({"id": item_id, "path": index.path(item_id), "label": index.labels[p % n]})
    return out


def packed_stack(codes: Sequence[np.ndarray]) -> np.ndarray:
    return np.ascontiguousarray(np.stack(codes)) if codes else np.zeros((0, 0), dtype=np.uint8)
