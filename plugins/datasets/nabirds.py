"""``nabirds``: NABirds from its official files (query = test, database = train).

Same file layout as CUB (``images.txt``, ``image_class_labels.txt``, ``train_test_split.txt``, ``classes.txt``)
but image ids are strings and the 555 leaf class ids are not contiguous: labels are the **sorted unique class
ids** of ``image_class_labels.txt`` mapped to 0..554 (SEMICON enumerates a set, which gives the same order
for these ids). Class names are recorded as ``"<class id> <name>"``, so a split manifest records the
mapping. ``hierarchy.txt`` is not used. Official sizes: 555 classes, 23,929 train, 24,633 test.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from hashkit.interfaces import BuildContext, RetrievalData
from hashkit_plugins.datasets._files import dataset_example, write_lines, write_tiny_image
from hashkit_plugins.datasets._fine_grained import FineGrainedConfig, finish, root_of
from hashkit_plugins.datasets.cub200 import id_table, read_id_layout

OFFICIAL = {"train": 23929, "query": 24633, "classes": 555}


@attrs.frozen
class NABirdsConfig(FineGrainedConfig):
    pass


def build_nabirds(cfg: NABirdsConfig, ctx: BuildContext) -> RetrievalData:
    """NABirds (555 leaf classes, sorted class ids -> 0..554) from its official lists (query = test)."""
    root = root_of("nabirds", cfg)
    rows = read_id_layout("nabirds", root)
    class_ids = sorted({c for _, _, c, _ in rows})
    label_of = {c: i for i, c in enumerate(class_ids)}
    names_by_id = id_table(root / "classes.txt", "class") if (root / "classes.txt").exists() else {}
    names = [f"{c} {names_by_id.get(str(c), '')}".strip() for c in class_ids]
    train = ([f"images/{r}" for _, r, _, t in rows if t], [label_of[c] for _, _, c, t in rows if t])
    test = ([f"images/{r}" for _, r, _, t in rows if not t], [label_of[c] for _, _, c, t in rows if not t])
    return finish("nabirds", cfg, root, names, train, test, OFFICIAL)


def write_miniature(tmp: Path) -> dict:
    """A miniature nabirds tree: leaf classes 295, 1000, 42 (non-contiguous, unsorted in the files), 2 images
    each with UUID-like ids; the first image of each class is a test image."""
    root = tmp / "nabirds"
    images, labels, split = [], [], []
    for n, cid in enumerate((295, 1000, 42)):
        for j in range(2):
            image_id = f"{cid:04x}{j}-aa{n}b-4c{j}d-8e9f-{n}{j}"
            rel = f"{cid:04d}/{image_id.replace('-', '')}.jpg"
            write_tiny_image(root / "images" / rel, n * 2 + j)
            images.append(f"{image_id} {rel}")
            labels.append(f"{image_id} {cid}")
            split.append(f"{image_id} {0 if j == 0 else 1}")
    write_lines(root / "images.txt", images)
    write_lines(root / "image_class_labels.txt", labels)
    write_lines(root / "train_test_split.txt", split)
    write_lines(root / "classes.txt", ["0 Birds", "42 Wood Duck", "295 Mallard (Male)", "1000 Osprey"])
    write_lines(root / "hierarchy.txt", ["42 0", "295 0", "1000 0"])
    return {"root": str(root), "expected_counts": {"train": 3, "query": 3, "classes": 3}}


def components(register):
    register("dataset", "nabirds", build_nabirds, config=NABirdsConfig, example=dataset_example(write_miniature))
