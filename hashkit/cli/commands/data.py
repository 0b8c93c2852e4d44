"""``hashkit data``: split manifests and dataset checks.

    hashkit data manifest RECIPE_OR_DATASET [--set KEY=VALUE ...] [--out FILE] [--check FILE]
    hashkit data check RECIPE_OR_DATASET [--set KEY=VALUE ...] [--manifest FILE] [--images]
    hashkit data images RECIPE_OR_DATASET [--set KEY=VALUE ...] --split database --out DIR [--per-class N]

``RECIPE_OR_DATASET`` is a recipe file (``.toml``; ``--set`` overrides recipe keys such as
``data.dataset.root=/data/CUB_200_2011``) or a registered dataset name (``--set`` then sets that dataset's
config keys, e.g. ``root=/data/CUB_200_2011``). A missing file, a count mismatch or a split that differs
from a manifest exits with status 2 and one line saying what differs.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections import Counter
from pathlib import Path

from hashkit.atomic_io import atomic_write_png
from hashkit.cli.args import add_image_options, add_set_option
from hashkit.errors import DataError

DESCRIPTION = ("Check a dataset (counts per split and class, unreadable images), write or verify its split "
               "manifest, or write a split's images into class folders. RECIPE_OR_DATASET is a recipe file (.toml) or a registered dataset name such as cub200; "
               "a missing file, a count mismatch or a split that differs from a manifest exits with status 2 "
               "and one line saying what differs.")
SOURCE_HELP = "a recipe file (.toml) or a registered dataset name (e.g. cub200; see `hashkit components dataset`)"
SET_HELP = ("with a RECIPE file: override a recipe key (--set data.dataset.root=/data/CUB_200_2011); with a DATASET "
            "name: set one of its options (--set root=/data/CUB_200_2011); TOML literal, repeatable")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("data", help="dataset split manifests and checks", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    p = sub.add_parser("manifest", help="write (or --check) the split manifest of a recipe's dataset or a dataset",
                       description="Write the split manifest of a dataset (--out), verify the dataset against a "
                                   "manifest (--check), or print its summary.")
    p.add_argument("source", metavar="RECIPE_OR_DATASET", help=SOURCE_HELP)
    add_set_option(p, SET_HELP)
    p.add_argument("--out", type=Path, help="write the manifest here (default: print its summary only)")
    p.add_argument("--check", type=Path, metavar="FILE", help="verify the dataset against this manifest")
    p.set_defaults(func=run_manifest)

    c = sub.add_parser("check", help="load a dataset and print its counts per split and class",
                       description="Load a dataset and print its counts per split and class; with --images open "
                                   "every image and list unreadable ones.")
    c.add_argument("source", metavar="RECIPE_OR_DATASET", help=SOURCE_HELP)
    add_set_option(c, SET_HELP)
    c.add_argument("--manifest", type=Path, help="also verify the split against this manifest")
    c.add_argument("--images", action="store_true", help="open every image and report unreadable ones")
    add_image_options(c)
    c.set_defaults(func=run_check)

    i = sub.add_parser("images", help="write a split's images as PNG files in one folder per class",
                       description="Write a split's images as PNG files into one folder per class (e.g. photos to "
                                   "try hashkit encode and search on).")
    i.add_argument("source", metavar="RECIPE_OR_DATASET", help=SOURCE_HELP)
    add_set_option(i, SET_HELP)
    i.add_argument("--split", default="database", help="split to write (default database)")
    i.add_argument("--out", type=Path, required=True, metavar="DIR", help="new (or empty) folder to write into")
    i.add_argument("--per-class", type=int, default=0, metavar="N", help="at most N images per class (0 = all)")
    i.set_defaults(func=run_images)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def load_data(source: str, overrides: list[str]):
    """The RetrievalData of a recipe file or of a registered dataset name with ``--set`` config keys."""
    from hashkit.assemble import build_dataset, make_component
    from hashkit.recipe.load import load_recipe
    from hashkit.recipe.overrides import parse_set

    path = Path(source)
    if path.suffix == ".toml" or path.is_file():
        return build_dataset(load_recipe(path, overrides or None))
    params = dict(parse_set(item) for item in overrides)
    return make_component("dataset", source, params)


def run_manifest(args: argparse.Namespace) -> int:
    from hashkit.data.manifest import build_manifest, verify_manifest, write_manifest

    data = load_data(args.source, args.overrides)
    if args.check:
        manifest = verify_manifest(data, args.check)
        print(f"{data.name}: split matches {args.check} ({manifest['checksum']}; "
              + ", ".join(f"{k} {v}" for k, v in manifest["counts"].items()) + ")")
    if args.out:
        manifest = write_manifest(data, args.out)
        print(f"wrote {args.out}: {manifest['checksum']}")
    elif not args.check:
        manifest = build_manifest(data)
        summary = {k: manifest[k] for k in ("dataset", "version", "protocol", "num_classes", "counts", "checksum")}
        json.dump(summary, sys.stdout, indent=1)
        print()
    return 0


def run_check(args: argparse.Namespace) -> int:
    from hashkit.data.image_dataset import ImageDataset
    from hashkit.data.manifest import verify_manifest

    data = load_data(args.source, args.overrides)
    print(f"{data.name}: {data.num_classes} classes; protocol: {data.protocol}")
    names = list(data.splits)
    per_class = {}
    for name in names:
        split = data.split(name)
        per_class[name] = Counter(int(c) for row in split.targets for c in row.nonzero().flatten())
        same = [o for o in names[: names.index(name)] if data.splits[o] is split]
        print(f"  {name:<9} {len(split):>8} images" + (f" (same as {same[0]})" if same else ""))
    width = max((len(str(n)) for n in data.class_names), default=5)
    print(f"  {'class':<{width}} " + " ".join(f"{n:>9}" for n in names))
    for c in range(data.num_classes):
        label = str(data.class_names[c]) if c < len(data.class_names) else str(c)
        print(f"  {label:<{width}} " + " ".join(f"{per_class[n].get(c, 0):>9}" for n in names))
    if args.images:
        bad_total = 0
        seen = set()
        for name in names:
            split = data.split(name)
            if id(split) in seen:
                continue
            seen.add(id(split))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found = ImageDataset(split, skip_bad_images=True).scan()
            for index, message in found.items():
                print(f"  bad image in {name}: {message}")
            bad_total += len(found)
        if bad_total:
            raise DataError(f"{data.name}: {bad_total} unreadable image(s), listed above")
        print("  all images readable")
    if args.manifest:
        manifest = verify_manifest(data, args.manifest)
        print(f"  split matches {args.manifest} ({manifest['checksum']})")
    return 0


def class_folder(name: str) -> str:
    """A class name as one safe folder name (no separators, no leading dots)."""
    import re

    return re.sub(r"[^A-Za-z0-9._ -]+", "-", str(name)).strip(" .") or "class"


def run_images(args: argparse.Namespace) -> int:
    """Write ``OUT/<class>/<split>_<index>.png`` for the split's items (an ImageFolder layout that
    ``hashkit encode`` and ``hashkit serve`` read back, the class as the folder name)."""
    data = load_data(args.source, args.overrides)
    split = data.split(args.split)
    if args.out.exists() and any(args.out.iterdir()):
        raise DataError(f"{args.out} exists and is not empty; choose a new folder")
    counts: Counter = Counter()
    written = 0
    for index, (item, target) in enumerate(zip(split.items, split.targets)):
        classes = target.nonzero().flatten().tolist()
        c = classes[0] if classes else -1
        if args.per_class and counts[c] >= args.per_class:
            continue
        counts[c] += 1
        name = data.class_names[c] if 0 <= c < len(data.class_names) else (str(c) if c >= 0 else "unlabelled")
        path = args.out / class_folder(name) / f"{args.split}_{index:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_png(path, split.reader(item))
        written += 1
    print(f"wrote {written} images of {data.name}'s {args.split} split in {len(counts)} class folders to {args.out}")
    return 0
