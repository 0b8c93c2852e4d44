"""Shared loading of the Oxford / Paris landmark benchmarks (original and revisited ground truth).

Formats (docs/datasets.md):

- revisited: ``gnd_<name>.pkl`` (official) or ``gnd_<name>.json`` (same structure): ``imlist`` (database
  names), ``qimlist`` (query names), ``gnd`` (per query ``bbx`` = [x1, y1, x2, y2], ``easy``, ``hard``,
  ``junk`` = lists of database indices). The pickle is read with :class:`RestrictedUnpickler`, which
  builds only plain containers, numbers and strings (plus numeric numpy arrays, which official files made
  with numpy may hold) and refuses every other global, so a crafted file cannot run code.
- original: ``<gt_dir>/<query>_{query,good,ok,junk}.txt``; the ``_query.txt`` line is
  ``<name> x1 y1 x2 y2`` (Oxford names carry an ``oxc1_`` prefix, stripped); positives = good + ok.
  The database is every image under the image folder (sorted names).

Images: ``<root>/<images>/<name><suffix>`` (``layout = "flat"``, the revisitop layout) or
``<root>/<images>/<landmark>/<name><suffix>`` with ``landmark`` the second ``_`` field of the name
(``layout = "by_landmark"``, the original Paris archive). Queries are cropped to their box when
``crop_queries``.
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path
from typing import Any, Literal

import attrs

from hashkit.data.readers import FileImageReader
from hashkit.errors import DataError
from hashkit.evaluation.revisited import QueryGroundTruth, RevisitedGroundTruth, encode_targets
from hashkit.interfaces import ImageReader, RetrievalData, Split

_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain data only: lists, tuples, dicts, str, bytes, numbers, and numeric numpy arrays."""

    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY_GLOBALS:
            import numpy  # noqa: F401  (only loaded when the file really holds arrays)

            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a ground-truth file")


def _plain(value: Any, where: str) -> Any:
    """Numpy arrays / scalars -> lists / numbers; refuse object arrays."""
    if isinstance(value, dict):
        return {str(k): _plain(v, where) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if type(value).__module__ == "numpy":
        if getattr(getattr(value, "dtype", None), "kind", "") == "O":
            raise DataError(f"{where}: object arrays are not accepted in a ground-truth file")
        return value.tolist()
    return value


def read_gnd(path: Path) -> dict[str, Any]:
    """The revisited ground truth from ``.json`` or (restricted) ``.pkl``, checked for the expected keys."""
    if not path.is_file():
        raise DataError(f"ground-truth file not found: {path}")
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text())
        else:
            data = RestrictedUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except (pickle.UnpicklingError, json.JSONDecodeError, EOFError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the ground truth ({exc})") from None
    data = _plain(data, str(path))
    if not isinstance(data, dict) or not {"imlist", "qimlist", "gnd"} <= set(data):
        raise DataError(f"{path}: expected a mapping with keys imlist, qimlist, gnd")
    if len(data["gnd"]) != len(data["qimlist"]):
        raise DataError(f"{path}: {len(data['gnd'])} gnd entries for {len(data['qimlist'])} queries")
    return data


def gnd_to_ground_truth(data: dict[str, Any], where: str) -> tuple[RevisitedGroundTruth, list[tuple[float, ...]]]:
    n = len(data["imlist"])
    queries, boxes = [], []
    for i, g in enumerate(data["gnd"]):
        lists = []
        for key in ("easy", "hard", "junk"):
            idx = [int(v) for v in g.get(key, [])]
            if any(v < 0 or v >= n for v in idx):
                raise DataError(f"{where}: gnd[{i}].{key} holds an index outside the {n} database images")
            lists.append(tuple(idx))
        queries.append(QueryGroundTruth(*lists))
        bbx = g.get("bbx")
        boxes.append(tuple(float(v) for v in bbx) if bbx is not None else ())
    return RevisitedGroundTruth(tuple(queries), n), boxes


def read_classic_gt(gt_dir: Path, database: list[str], strip_prefix: str) -> tuple[list[str], RevisitedGroundTruth,
                                                                                   list[tuple[float, ...]]]:
    """Original Oxford5k / Paris6k ground truth: good + ok -> ``easy`` block, junk -> ``junk`` block."""
    if not gt_dir.is_dir():
        raise DataError(f"ground-truth folder not found: {gt_dir}")
    index = {name: i for i, name in enumerate(database)}
    names, queries, boxes = [], [], []
    for qfile in sorted(gt_dir.glob("*_query.txt")):
        stem = qfile.name[: -len("_query.txt")]
        fields = qfile.read_text().split()
        if len(fields) != 5:
            raise DataError(f"{qfile}: expected '<name> x1 y1 x2 y2', found {' '.join(fields)!r}")
        name = fields[0][len(strip_prefix):] if fields[0].startswith(strip_prefix) else fields[0]
        lists = {}
        for kind in ("good", "ok", "junk"):
            f = gt_dir / f"{stem}_{kind}.txt"
            if not f.is_file():
                raise DataError(f"ground-truth file not found: {f}")
            missing = [n for n in f.read_text().split() if n not in index]
            if missing:
                raise DataError(f"{f}: {len(missing)} images are not in the database (first: {missing[0]!r})")
            lists[kind] = tuple(index[n] for n in f.read_text().split())
        names.append(name)
        queries.append(QueryGroundTruth(lists["good"] + lists["ok"], (), lists["junk"]))
        boxes.append(tuple(float(v) for v in fields[1:]))
    if not names:
        raise DataError(f"no *_query.txt files in {gt_dir}")
    return names, RevisitedGroundTruth(tuple(queries), len(database)), boxes


class CroppedReader(ImageReader):
    """Opens ``item`` with :class:`~hashkit.data.readers.FileImageReader` and crops it to its query box."""

    def __init__(self, folder: str | Path, boxes: dict[str, tuple[float, ...]]):
        self.files = FileImageReader(folder)
        self.boxes = dict(boxes)

    def describe(self, item: str) -> str:
        return self.files.describe(item)

    def __call__(self, item: str):
        img = self.files(item)
        box = self.boxes.get(item)
        if box:
            x1, y1, x2, y2 = box
            img = img.crop((int(x1), int(y1), int(round(x2)), int(round(y2))))
        return img


def relative_path(name: str, suffix: str, layout: str) -> str:
    """Item (path under the image folder) of image ``name``."""
    if layout == "by_landmark":
        parts = name.split("_")
        return f"{parts[1] if len(parts) > 2 else ''}/{name}{suffix}"
    return f"{name}{suffix}"


def list_images(folder: Path, suffix: str, layout: str) -> list[str]:
    if not folder.is_dir():
        raise DataError(f"image folder not found: {folder}")
    pattern = f"*/*{suffix}" if layout == "by_landmark" else f"*{suffix}"
    return sorted(p.name[: -len(suffix)] for p in folder.glob(pattern))


def landmark_data(name: str, query_names: list[str], database: list[str], gt: RevisitedGroundTruth,
                  boxes: list[tuple[float, ...]], folder: Path, suffix: str, layout: str, crop_queries: bool,
                  protocol: str) -> RetrievalData:
    """RetrievalData with targets in the revisited label encoding; ``train`` is the database (see docs)."""
    qt, dt = encode_targets(gt)
    q_items = [relative_path(q, suffix, layout) for q in query_names]
    box_map = {item: b for item, b in zip(q_items, boxes) if b} if crop_queries else {}
    db_items = [relative_path(n, suffix, layout) for n in database]
    db_split = Split(items=db_items, targets=dt, reader=FileImageReader(folder))
    q_split = Split(items=q_items, targets=qt, reader=CroppedReader(folder, box_map))
    return RetrievalData(name=name, num_classes=3 * len(query_names),
                         splits={"train": db_split, "query": q_split, "database": db_split},
                         class_names=[f"{b}:{q}" for b in ("easy", "hard", "junk") for q in query_names],
                         protocol=protocol)


def check_count(what: str, found: int, expected: tuple[int, ...], verify: bool) -> None:
    if verify and found not in expected:
        raise DataError(f"{what}: found {found}, the official release has {' or '.join(map(str, expected))} "
                        "(set verify_counts = false to accept a different tree)")


@attrs.frozen
class RevisitedConfig:
    """Config fields shared by the revisited datasets (``roxford5k``, ``rparis6k``)."""

    #: dataset folder (holds the gnd file and the image folder)
    root: str = "data/roxford5k"
    #: ground-truth file under root: the official .pkl (read restrictedly) or a .json with the same keys
    gnd: str = "gnd_roxford5k.pkl"
    #: image folder under root
    images: str = "jpg"
    suffix: str = ".jpg"
    layout: Literal["flat", "by_landmark"] = "flat"
    #: crop query images to their bounding box (the protocol)
    crop_queries: bool = True
    #: refuse a tree whose query / database counts differ from the official release
    verify_counts: bool = True


@attrs.frozen
class ClassicConfig:
    """Config fields shared by the original datasets (``oxford5k``, ``paris6k``)."""

    root: str = "data/oxford5k"
    #: folder of <query>_{query,good,ok,junk}.txt under root
    gt_dir: str = "gt_files_170407"
    images: str = "oxbuild_images"
    suffix: str = ".jpg"
    layout: Literal["flat", "by_landmark"] = "flat"
    #: prefix stripped from the image names of the _query.txt files
    query_prefix: str = "oxc1_"
    crop_queries: bool = True
    verify_counts: bool = True


def build_revisited(cfg: RevisitedConfig, name: str, queries: int, database: int) -> RetrievalData:
    root = Path(cfg.root)
    gnd_path = root / cfg.gnd
    data = read_gnd(gnd_path)
    gt, boxes = gnd_to_ground_truth(data, str(gnd_path))
    check_count(f"{name} queries in {gnd_path}", len(data["qimlist"]), (queries,), cfg.verify_counts)
    check_count(f"{name} database images in {gnd_path}", len(data["imlist"]), (database,), cfg.verify_counts)
    folder = root / cfg.images
    if not folder.is_dir():
        raise DataError(f"{name}: image folder not found: {folder}")
    return landmark_data(name, [str(q) for q in data["qimlist"]], [str(n) for n in data["imlist"]], gt, boxes,
                         folder, cfg.suffix, cfg.layout, cfg.crop_queries,
                         "revisited: query = cropped qimlist images, database = imlist; Easy/Medium/Hard with junk")


def build_classic(cfg: ClassicConfig, name: str, queries: int, database: tuple[int, ...]) -> RetrievalData:
    root = Path(cfg.root)
    folder = root / cfg.images
    images = list_images(folder, cfg.suffix, cfg.layout)
    check_count(f"{name} images in {folder}", len(images), database, cfg.verify_counts)
    names, gt, boxes = read_classic_gt(root / cfg.gt_dir, images, cfg.query_prefix)
    check_count(f"{name} queries in {root / cfg.gt_dir}", len(names), (queries,), cfg.verify_counts)
    return landmark_data(name, names, images, gt, boxes, folder, cfg.suffix, cfg.layout, cfg.crop_queries,
                         "original: positives = good + ok (easy block), junk removed; read map_medium/map_easy")


def write_tiny_revisited(root: Path, gnd_name: str) -> dict[str, Any]:
    """A 2-query, 6-image revisited tree (tiny PNG-in-.jpg images) for conformance tests."""
    from PIL import Image

    (root / "jpg").mkdir(parents=True)
    imlist = [f"img{i}" for i in range(6)]
    qimlist = ["q0", "q1"]
    for i, n in enumerate(imlist + qimlist):
        Image.new("RGB", (16, 12), (i * 30, 0, 0)).save(root / "jpg" / f"{n}.jpg", format="PNG")
    gnd = [{"bbx": [1.0, 1.0, 9.0, 8.0], "easy": [0, 1], "hard": [2], "junk": [3]},
           {"bbx": [0.0, 0.0, 16.0, 12.0], "easy": [4], "hard": [], "junk": [0, 5]}]
    (root / gnd_name).write_bytes(pickle.dumps({"imlist": imlist, "qimlist": qimlist, "gnd": gnd}))
    return {"root": str(root), "gnd": gnd_name, "verify_counts": False}


def write_tiny_classic(root: Path, images: str, gt_dir: str, prefix: str, layout: str) -> dict[str, Any]:
    """A 1-query, 5-image original-format tree for conformance tests."""
    from PIL import Image

    names = [f"paris_defense_{i:06d}" for i in range(5)]
    for i, n in enumerate(names):
        path = root / images / relative_path(n, ".jpg", layout)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 12), (0, i * 40, 0)).save(path, format="PNG")
    gt = root / gt_dir
    gt.mkdir(parents=True)
    (gt / "defense_1_query.txt").write_text(f"{prefix}{names[0]} 1.0 2.0 10.0 11.0\n")
    (gt / "defense_1_good.txt").write_text(f"{names[0]}\n{names[1]}\n")
    (gt / "defense_1_ok.txt").write_text(f"{names[2]}\n")
    (gt / "defense_1_junk.txt").write_text(f"{names[3]}\n")
    return {"root": str(root), "images": images, "gt_dir": gt_dir, "query_prefix": prefix, "layout": layout,
            "verify_counts": False}
