"""Build hashkit's shipped demo data from Debian's ``dataset-fashion-mnist`` package.

    apt-get install -y dataset-fashion-mnist
    python tools/make_demo_data.py [--src /usr/share/datasets/fashion-mnist] [--train 200] [--query 50]

Writes ``plugins/datasets/demo_data/fashion_mnist_demo.npz`` with ``train_images`` (uint8, (10*train, 28, 28)),
``train_labels``, ``query_images``, ``query_labels`` (int64), ``class_names`` and ``source`` (a text record
of where the rows came from). Selection is deterministic: the first ``--train`` images of each class in
the official training file (``train-images-idx3-ubyte.gz``) and the first ``--query`` images of each class
in the official test file (``t10k-images-idx3-ubyte.gz``), in file order, grouped by class.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
from pathlib import Path

import numpy as np

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")
OUT = Path(__file__).resolve().parents[1] / "plugins" / "datasets" / "demo_data" / "fashion_mnist_demo.npz"


def read_idx(path: Path, offset: int) -> np.ndarray:
    """An IDX file's payload (images: header 16 bytes, labels: 8 bytes) as uint8."""
    with gzip.open(path, "rb") as fh:
        return np.frombuffer(fh.read(), dtype=np.uint8, offset=offset)


def first_per_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    rows = [np.flatnonzero(labels == c)[:per_class] for c in range(len(CLASS_NAMES))]
    if any(len(r) < per_class for r in rows):
        raise SystemExit(f"fewer than {per_class} images in some class")
    return np.concatenate(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    ap.add_argument("--train", type=int, default=200, help="training (= database) images per class")
    ap.add_argument("--query", type=int, default=50, help="query images per class (from the official test set)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    arrays = {}
    source = []
    for split, stem, per_class in (("train", "train", args.train), ("query", "t10k", args.query)):
        img_file = args.src / f"{stem}-images-idx3-ubyte.gz"
        lab_file = args.src / f"{stem}-labels-idx1-ubyte.gz"
        images = read_idx(img_file, 16).reshape(-1, 28, 28)
        labels = read_idx(lab_file, 8)
        rows = first_per_class(labels, per_class)
        arrays[f"{split}_images"] = images[rows].copy()
        arrays[f"{split}_labels"] = labels[rows].astype(np.int64)
        for f in (img_file, lab_file):
            source.append(f"{f.name} sha256={hashlib.sha256(f.read_bytes()).hexdigest()}")
        source.append(f"{split}: first {per_class} rows of each class of {img_file.name}, rows {rows.tolist()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, class_names=np.array(CLASS_NAMES), source=np.array("\n".join(source)), **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
