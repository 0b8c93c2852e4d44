"""Versioned split manifests: the exact query and database lists of a dataset, with a checksum.

A manifest is a JSON file::

    {"format": "hashkit-split-manifest", "version": 1, "dataset": "cub200",
     "protocol": "query=test, database=train", "num_classes": 200, "class_names": [...],
     "counts": {"query": 5794, "database": 5994},
     "checksum": "sha256:<hex>",
     "splits": {"query": [["images/001.../x.jpg", [0]], ...], "database": [...]}}

``checksum`` is the sha256 of the canonical text of the lists: the line ``classes\\t<n>\\t<names joined by
\\x1f>`` followed, for each split in the order above, by ``<split>\\t<item>\\t<labels joined by ,>`` lines (labels
are the target's non-zero columns, ascending). Two users whose checksums agree evaluated on the same images
with the same labels in the same order. A ``train`` list is included only when it differs from the database.
Roots are not recorded (items are relative), so manifests compare across machines.

A dataset split into seen and unseen classes (:mod:`hashkit.data.open_set`) records every class in column
order (seen first) with ``num_classes`` = all of them, the seen rows as ``query`` / ``database`` and the
unseen rows as ``query_unseen`` / ``database_unseen``, all with their labels over **all** columns, plus::

    "open_set": {"num_seen": 190, "seen_fraction": 0.95, "rule": "...",
                 "classes": [{"column": 0, "source": 0, "name": "...", "seen": true}, ...]}

and the checksum text gains the line ``open_set\t<num_seen>\t<source class of each column joined by ,>``
after the class line, so the class order, the seen/unseen flags and every list are covered by the checksum.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from hashkit.atomic_io import atomic_write_text
from hashkit.errors import DataError
from hashkit.data.open_set import class_list
from hashkit.interfaces.dataset import RetrievalData, Split

FORMAT = "hashkit-split-manifest"
VERSION = 1


def _rows(split: Split) -> list[tuple[str, list[int]]]:
    labels = [row.nonzero().flatten().tolist() for row in split.targets]
    return [(str(item), lab) for item, lab in zip(split.items, labels)]


def _split_names(data: RetrievalData) -> list[str]:
    names = ["query", "database"]
    if "train" in data.splits and data.splits["train"] is not data.splits.get("database"):
        names.append("train")
    return names


def checksum(class_names: list[str], num_classes: int, splits: dict[str, list],
             open_set: dict[str, Any] | None = None) -> str:
    """sha256 of the canonical text of ``splits`` (``{name: [(item, [labels])]}``, in dict order)."""
    h = hashlib.sha256()
    h.update(f"classes\t{num_classes}\t{chr(0x1f).join(class_names)}\n".encode())
    if open_set is not None:
        sources = ",".join(str(int(c["source"])) for c in open_set["classes"])
        h.update(f"open_set\t{int(open_set['num_seen'])}\t{sources}\n".encode())
    for name, rows in splits.items():
        for item, labels in rows:
            h.update(f"{name}\t{item}\t{','.join(str(int(c)) for c in labels)}\n".encode())
    return "sha256:" + h.hexdigest()


def build_manifest(data: RetrievalData) -> dict[str, Any]:
    """The manifest (a JSON-ready dict) of ``data``'s query and database (and distinct train) splits."""
    splits = {name: _rows(data.split(name)) for name in _split_names(data)}
    names = [str(n) for n in data.class_names]
    num_classes = data.num_classes
    open_set = None
    if data.open_set is not None:
        o = data.open_set
        names, num_classes = [str(n) for n in o.class_names], o.num_classes
        splits.update(query=_rows(o.query_seen), database=_rows(o.database_seen),
                      query_unseen=_rows(o.query_unseen), database_unseen=_rows(o.database_unseen))
        open_set = {"num_seen": o.num_seen, "seen_fraction": o.classes.seen_fraction, "rule": o.classes.rule,
                    "classes": class_list(o.classes, names)}
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "dataset": data.name,
        "protocol": data.protocol,
        "num_classes": num_classes,
        "class_names": names,
        "counts": {name: len(rows) for name, rows in splits.items()},
        "checksum": checksum(names, num_classes, splits, open_set),
        "splits": {name: [[item, labels] for item, labels in rows] for name, rows in splits.items()},
    }
    if open_set is not None:
        manifest["open_set"] = open_set
    return manifest


def fingerprint(data: RetrievalData) -> dict[str, Any]:
    """What a run directory records about its split: dataset, manifest version, counts and checksum (and, for
    a seen/unseen split, the number of seen classes, the seen fraction and the rule)."""
    m = build_manifest(data)
    out = {k: m[k] for k in ("dataset", "version", "counts", "checksum")}
    if "open_set" in m:
        out["open_set"] = {k: m["open_set"][k] for k in ("num_seen", "seen_fraction", "rule")}
    return out


def write_manifest(data: RetrievalData, path: str | Path) -> dict[str, Any]:
    """Write ``data``'s manifest to ``path`` atomically; returns it."""
    manifest = build_manifest(data)
    atomic_write_text(path, json.dumps(manifest, indent=1) + "\n")
    return manifest


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Load a manifest and check its format, version and that its lists still match its own checksum."""
    path = Path(path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"split manifest not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"split manifest {path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{path} is not a hashkit split manifest (format {FORMAT!r})")
    if manifest.get("version") != VERSION:
        raise DataError(f"split manifest {path} has version {manifest.get('version')!r}; this hashkit reads {VERSION}")
    try:
        splits = {name: [(item, labels) for item, labels in rows] for name, rows in manifest["splits"].items()}
        own = checksum(manifest["class_names"], manifest["num_classes"], splits, manifest.get("open_set"))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"split manifest {path} is malformed: {exc}") from None
    if own != manifest.get("checksum"):
        raise DataError(f"split manifest {path} was edited: its lists do not match its checksum")
    return manifest


def _first_difference(name: str, expected: list, actual: list) -> str:
    for i, (e, a) in enumerate(zip(expected, actual)):
        if list(e) != list(a):
            return f"{name} row {i}: manifest {e[0]} {e[1]}, dataset {a[0]} {a[1]}"
    return f"{name} has {len(actual)} rows, manifest {len(expected)}"


def verify_manifest(data: RetrievalData, path: str | Path) -> dict[str, Any]:
    """Check that ``data`` has exactly the split recorded in the manifest at ``path``; returns the manifest.

    Raises :class:`DataError` with one line naming the manifest, the first differing split and row.
    """
    expected = read_manifest(path)
    actual = build_manifest(data)
    if actual["checksum"] == expected["checksum"]:
        return expected
    if actual["dataset"] != expected["dataset"]:
        raise DataError(f"split differs from manifest {path}: it is for dataset {expected['dataset']!r}, "
                        f"this is {actual['dataset']!r}")
    if actual["class_names"] != expected["class_names"] or actual["num_classes"] != expected["num_classes"]:
        raise DataError(f"split differs from manifest {path}: the class list differs "
                        f"({actual['num_classes']} classes, manifest {expected['num_classes']})")
    for name in sorted(set(expected["splits"]) | set(actual["splits"])):
        e, a = expected["splits"].get(name), actual["splits"].get(name)
        if e is None or a is None:
            raise DataError(f"split differs from manifest {path}: split {name!r} is only in the "
                            f"{'dataset' if e is None else 'manifest'}")
        if e != a:
            raise DataError(f"split differs from manifest {path} ({expected['checksum'][:19]}... vs "
                            f"{actual['checksum'][:19]}...): {_first_difference(name, e, a)}")
    raise DataError(f"split differs from manifest {path}: checksum mismatch")
