"""Split manifests: write, verify, detect a changed split; the `hashkit data` command."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from hashkit.assemble import make_component
from hashkit.cli.main import main
from hashkit.data.manifest import build_manifest, fingerprint, read_manifest, verify_manifest, write_manifest
from hashkit.errors import DataError
from hashkit_plugins.datasets.cub200 import write_miniature


@pytest.fixture
def cub(tmp_path):
    cfg = write_miniature(tmp_path)
    return cfg, make_component("dataset", "cub200", cfg)


def test_manifest_contents_and_checksum_literal(cub, tmp_path):
    cfg, data = cub
    m = write_manifest(data, tmp_path / "m.json")
    assert m["dataset"] == "cub200" and m["version"] == 1
    assert m["counts"] == {"query": 3, "database": 6}
    assert m["splits"]["query"][1] == ["images/002.Bird_2/Bird_2_0000.jpg", [1]]
    # independent recomputation of the documented canonical text
    text = "classes\t3\t" + "\x1f".join(m["class_names"]) + "\n"
    for split in ("query", "database"):
        for item, labels in m["splits"][split]:
            text += f"{split}\t{item}\t{','.join(map(str, labels))}\n"
    assert m["checksum"] == "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    assert read_manifest(tmp_path / "m.json") == json.loads((tmp_path / "m.json").read_text())
    assert fingerprint(data)["checksum"] == m["checksum"]


def test_verify_passes_on_same_split_and_detects_changes(cub, tmp_path):
    cfg, data = cub
    path = tmp_path / "m.json"
    write_manifest(data, path)
    verify_manifest(make_component("dataset", "cub200", cfg), path)
    # move image 4 (class 2, train) to the test split
    split_file = Path(cfg["root"]) / "train_test_split.txt"
    split_file.write_text(split_file.read_text().replace("5 1\n", "5 0\n"))
    changed = make_component("dataset", "cub200", {**cfg, "expected_counts": {}})
    with pytest.raises(DataError, match=r"split differs from manifest .*m.json .*database row 2: manifest "
                                        r"images/002.Bird_2/Bird_2_0001.jpg \[1\], dataset "
                                        r"images/002.Bird_2/Bird_2_0002.jpg"):
        verify_manifest(changed, path)


def test_relabelled_classes_are_detected(cub, tmp_path):
    cfg, data = cub
    write_manifest(data, tmp_path / "m.json")
    labels = Path(cfg["root"]) / "image_class_labels.txt"
    labels.write_text(labels.read_text().replace("9 3\n", "9 2\n"))
    with pytest.raises(DataError, match="database row 5"):
        verify_manifest(make_component("dataset", "cub200", {**cfg, "expected_counts": {}}), tmp_path / "m.json")


def test_edited_or_foreign_manifest_is_rejected(cub, tmp_path):
    _, data = cub
    path = tmp_path / "m.json"
    m = write_manifest(data, path)
    m["splits"]["query"].pop()
    path.write_text(json.dumps(m))
    with pytest.raises(DataError, match="was edited"):
        read_manifest(path)
    path.write_text("{}")
    with pytest.raises(DataError, match="not a hashkit split manifest"):
        read_manifest(path)
    with pytest.raises(DataError, match="not found"):
        read_manifest(tmp_path / "none.json")
    write_manifest(make_component("dataset", "demo", {"train_per_class": 2, "query_per_class": 1}), path)
    with pytest.raises(DataError, match="it is for dataset 'demo', this is 'cub200'"):
        verify_manifest(data, path)


def test_distinct_train_split_is_included():
    from hashkit.interfaces import RetrievalData

    demo = make_component("dataset", "demo", {"train_per_class": 2, "query_per_class": 1})
    data = RetrievalData(name="x", num_classes=10, splits={**demo.splits, "database": demo.split("query")})
    assert list(build_manifest(data)["splits"]) == ["query", "database", "train"]


def test_cli_manifest_and_check(cub, tmp_path, capsys):
    cfg, _ = cub
    out = tmp_path / "cli.json"
    args = ["--set", f"root={cfg['root']}", "--set", "expected_counts={train = 6, query = 3, classes = 3}"]
    assert main(["data", "manifest", "cub200", *args, "--out", str(out)]) == 0
    assert main(["data", "manifest", "cub200", *args, "--check", str(out)]) == 0
    assert "split matches" in capsys.readouterr().out
    assert main(["data", "check", "cub200", *args, "--manifest", str(out), "--images"]) == 0
    text = capsys.readouterr().out
    assert "query            3 images" in text and "database         6 images (same as train)" in text
    assert "all images readable" in text
    split_file = Path(cfg["root"]) / "train_test_split.txt"
    split_file.write_text(split_file.read_text().replace("5 1\n", "5 0\n"))
    args[-1] = "expected_counts={}"
    assert main(["data", "manifest", "cub200", *args, "--check", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hashkit: error: split differs from manifest") and "\n" not in err
    assert main(["data", "check", "cub200", "--set", f"root={cfg['root']}"]) == 2
    assert "train has 5 images, expected 5994" in capsys.readouterr().err


def test_cli_reads_a_recipe_with_overrides(tmp_path, capsys):
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        'name = "t"\ncode_lengths = [12]\n'
        '[model]\nbackbone = { name = "tiny_cnn", width = 4 }\naggregation = { name = "gap" }\n'
        'hash_head = { name = "linear" }\n'
        '[[losses]]\nname = "cross_entropy"\n'
        '[protocol]\nname = "pointwise"\n'
        '[data]\ndataset = { name = "demo", train_per_class = 3, query_per_class = 1 }\n')
    assert main(["data", "check", str(recipe), "--set", "data.dataset.query_per_class=2"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "train           30 images" in out and "query           20 images" in out
