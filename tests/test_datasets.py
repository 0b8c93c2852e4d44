"""Each dataset format loads from a miniature copy of its official layout; errors name what is wrong."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hashkit.assemble import make_component
from hashkit.data.image_dataset import ImageDataset
from hashkit.errors import DataError, RecipeError
from hashkit.registry import get_registry
from hashkit.testing import check_component

BENCHMARKS = ["cub200", "aircraft", "food101", "nabirds", "vegfru", "stanford_cars", "stanford_dogs"]
ALL = BENCHMARKS + ["image_folder", "list_file", "demo"]


def miniature(name: str, tmp_path: Path) -> dict:
    return importlib.import_module(f"hashkit_plugins.datasets.{name}").write_miniature(tmp_path)


def labels_of(split) -> list[int]:
    return split.targets.argmax(1).tolist()


@pytest.mark.parametrize("name", ALL)
def test_registered_and_conforms(name):
    assert name in get_registry().names("dataset")
    check_component("dataset", name)


@pytest.mark.parametrize("name", BENCHMARKS)
def test_official_counts_are_checked_by_default(name, tmp_path):
    cfg = miniature(name, tmp_path)
    official = importlib.import_module(f"hashkit_plugins.datasets.{name}").OFFICIAL
    with pytest.raises(DataError, match=rf"train has {cfg['expected_counts']['train']} images, "
                                         rf"expected {official['train']}.*expected_counts"):
        make_component("dataset", name, {"root": cfg["root"]})
    # an empty table switches the check off; the miniature sizes pass
    assert len(make_component("dataset", name, {"root": cfg["root"], "expected_counts": {}}).split("train"))
    make_component("dataset", name, cfg)


def test_spec_split_sizes_are_the_defaults():
    expected = {"cub200": (5994, 5794, 200), "aircraft": (6667, 3333, 100), "food101": (75750, 25250, 101),
                "nabirds": (23929, 24633, 555), "vegfru": (29200, 116931, 292),
                "stanford_cars": (8144, 8041, 196), "stanford_dogs": (12000, 8580, 120)}
    for name, (train, query, classes) in expected.items():
        official = importlib.import_module(f"hashkit_plugins.datasets.{name}").OFFICIAL
        assert official == {"train": train, "query": query, "classes": classes}


@pytest.mark.parametrize("name,missing", [
    ("cub200", "train_test_split.txt"), ("aircraft", "data/images_variant_test.txt"),
    ("food101", "meta/train.txt"), ("nabirds", "image_class_labels.txt"),
    ("vegfru", "vegfru_list/vegfru_test.txt"), ("stanford_dogs", "test.txt"), ("stanford_cars", "train.txt"),
])
def test_missing_file_names_file_and_place(name, missing, tmp_path):
    cfg = miniature(name, tmp_path)
    target = Path(cfg["root"]) / missing
    target.unlink()
    with pytest.raises(DataError, match=rf"missing file '{missing}' \(looked for {target}\)"):
        make_component("dataset", name, cfg)


def test_missing_root_and_unset_root(tmp_path):
    with pytest.raises(DataError, match="set data.dataset.root"):
        make_component("dataset", "cub200", {})
    with pytest.raises(DataError, match=f"root directory not found: {tmp_path / 'nope'}"):
        make_component("dataset", "food101", {"root": str(tmp_path / "nope")})


def test_expected_counts_keys_validated():
    with pytest.raises(RecipeError, match="expected_counts"):
        make_component("dataset", "cub200", {"root": "x", "expected_counts": {"database": 3}})


def test_cub200_parsing(tmp_path):
    data = make_component("dataset", "cub200", miniature("cub200", tmp_path))
    assert data.num_classes == 3 and data.class_names == ("001.Bird_1", "002.Bird_2", "003.Bird_3")
    assert data.split("query").items == ["images/001.Bird_1/Bird_1_0000.jpg", "images/002.Bird_2/Bird_2_0000.jpg",
                                         "images/003.Bird_3/Bird_3_0000.jpg"]
    assert labels_of(data.split("train")) == [0, 0, 1, 1, 2, 2]
    assert data.split("database") is data.split("train")
    img, target, index = ImageDataset(data.split("query"))[2]
    assert img.shape == (3, 8, 8) and target.tolist() == [0, 0, 1] and index == 2


def test_nabirds_sorted_class_ids(tmp_path):
    data = make_component("dataset", "nabirds", miniature("nabirds", tmp_path))
    # files list classes 295, 1000, 42 in that order; labels follow sorted ids 42 < 295 < 1000
    assert data.class_names == ("42 Wood Duck", "295 Mallard (Male)", "1000 Osprey")
    assert labels_of(data.split("query")) == [1, 2, 0]


def test_aircraft_variant_names_with_spaces(tmp_path):
    cfg = miniature("aircraft", tmp_path)
    data = make_component("dataset", "aircraft", cfg)
    assert data.class_names == ("707-320", "Cessna 172", "DHC-6 Twin Otter")
    assert data.split("query").items[1] == "data/images/1000012.jpg"
    assert labels_of(data.split("query")) == [0, 1, 2]
    test_list = Path(cfg["root"]) / "data" / "images_variant_test.txt"
    test_list.write_text(test_list.read_text() + "1000099 Boeing 747-400\n")
    with pytest.raises(DataError, match="'Boeing 747-400' of image 1000099 is not in variants.txt"):
        make_component("dataset", "aircraft", {**cfg, "expected_counts": {}})


def test_food101_paths_and_unknown_class(tmp_path):
    cfg = miniature("food101", tmp_path)
    data = make_component("dataset", "food101", cfg)
    assert data.split("query").items == ["images/apple_pie/103.jpg", "images/baby_back_ribs/113.jpg",
                                         "images/waffles/123.jpg"]
    (Path(cfg["root"]) / "meta" / "test.txt").write_text("pizza/1\n")
    with pytest.raises(DataError, match="'pizza/1' is not <class>/<id>"):
        make_component("dataset", "food101", {**cfg, "expected_counts": {}})


def test_vegfru_ignores_val_and_names_from_folders(tmp_path):
    data = make_component("dataset", "vegfru", miniature("vegfru", tmp_path))
    assert data.class_names == ("carrot", "leek", "kiwi")
    assert not any("_2.jpg" in i for i in data.split("train").items + data.split("query").items)  # val images
    assert data.split("train").items[:2] == ["veg200_images/carrot/v_0_0.jpg", "veg200_images/carrot/v_0_1.jpg"]


def test_stanford_dogs_txt_lists(tmp_path):
    data = make_component("dataset", "stanford_dogs", miniature("stanford_dogs", tmp_path))
    assert data.class_names == ("n02085620-Chihuahua", "n02085782-Japanese_spaniel")
    assert data.split("query").items == ["Images/n02085620-Chihuahua/n02085620_2.jpg",
                                         "Images/n02085782-Japanese_spaniel/n02085782_2.jpg"]
    assert labels_of(data.split("train")) == [0, 0, 1, 1]


def test_stanford_cars_txt_lists(tmp_path):
    data = make_component("dataset", "stanford_cars", miniature("stanford_cars", tmp_path))
    assert data.split("train").items == ["car_ims/000001.jpg", "car_ims/000003.jpg", "car_ims/000005.jpg",
                                         "car_ims/000007.jpg"]
    assert labels_of(data.split("query")) == [0, 0, 1, 1]


def _tiny_tree(root: Path, files: list[str]) -> None:
    for i, rel in enumerate(files):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((6, 6, 3), i, np.uint8)).save(root / rel)


def test_stanford_dogs_official_mat_lists(tmp_path):
    sio = pytest.importorskip("scipy.io")
    root = tmp_path / "dogs"
    files = ["n02085620-Chihuahua/n02085620_1.jpg", "n02085620-Chihuahua/n02085620_2.jpg",
             "n02116738-African_hunting_dog/n02116738_9.jpg"]
    _tiny_tree(root / "Images", files)
    (root / "lists").mkdir()
    for split, rows in (("train", [0, 2]), ("test", [1])):
        cell = np.empty((len(rows), 1), dtype=object)
        for j, r in enumerate(rows):
            cell[j, 0] = np.array([files[r]])
        sio.savemat(root / "lists" / f"{split}_list.mat",
                    {"file_list": cell, "labels": np.array([[1.0], [120.0]][: len(rows)]) if split == "train"
                     else np.array([[1.0]])})
    data = make_component("dataset", "stanford_dogs", {"root": str(root), "expected_counts": {}})
    assert data.split("train").items == [f"Images/{files[0]}", f"Images/{files[2]}"]
    assert data.num_classes == 120 and labels_of(data.split("train")) == [0, 119]
    assert data.split("query").reader(data.split("query").items[0]).size == (6, 6)


def test_stanford_cars_official_mat_layouts(tmp_path):
    sio = pytest.importorskip("scipy.io")
    root = tmp_path / "cars"
    _tiny_tree(root, ["car_ims/000001.jpg", "car_ims/000002.jpg", "car_ims/000003.jpg"])
    annos = np.zeros((1, 3), dtype=[("relative_im_path", object), ("bbox_x1", object), ("class", object),
                                    ("test", object)])
    for i, (cls, test) in enumerate(((2, 0), (1, 1), (2, 1))):
        annos[0, i] = (f"car_ims/{i + 1:06d}.jpg", np.array([[3]], np.uint8), np.array([[cls]], np.uint8),
                       np.array([[test]], np.uint8))
    names = np.empty((1, 2), dtype=object)
    names[0, 0], names[0, 1] = "AM General Hummer SUV 2000", "Acura RL Sedan 2012"
    sio.savemat(root / "cars_annos.mat", {"annotations": annos, "class_names": names})
    data = make_component("dataset", "stanford_cars", {"root": str(root), "expected_counts": {}})
    assert data.class_names == ("AM General Hummer SUV 2000", "Acura RL Sedan 2012")
    assert data.split("train").items == ["car_ims/000001.jpg"] and labels_of(data.split("train")) == [1]
    assert labels_of(data.split("query")) == [0, 1]


def test_mat_layout_without_scipy_says_what_to_do(tmp_path, monkeypatch):
    import builtins

    root = tmp_path / "dogs"
    (root / "lists").mkdir(parents=True)
    (root / "lists" / "train_list.mat").write_bytes(b"")
    (root / "lists" / "test_list.mat").write_bytes(b"")
    real_import = builtins.__import__

    def no_scipy(name, *args, **kwargs):
        if name.startswith("scipy"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_scipy)
    with pytest.raises(DataError, match=r"needs scipy \(pip install scipy\)"):
        make_component("dataset", "stanford_dogs", {"root": str(root)})


def test_image_folder_seeded_split_is_stable_and_per_class(tmp_path):
    cfg = miniature("image_folder", tmp_path)
    a = make_component("dataset", "image_folder", cfg)
    b = make_component("dataset", "image_folder", cfg)
    c = make_component("dataset", "image_folder", {**cfg, "seed": 5})
    assert a.split("query").items == b.split("query").items
    assert labels_of(a.split("query")) == [0, 1, 2]
    assert set(a.split("query").items).isdisjoint(a.split("train").items)
    assert len(a.split("train")) + len(a.split("query")) == 15
    seeds = {tuple(make_component("dataset", "image_folder", {**cfg, "seed": s}).split("query").items)
             for s in range(6)}
    assert len(seeds) > 1 and len(c.split("query")) == 3


def test_image_folder_explicit_dirs(tmp_path):
    _tiny_tree(tmp_path, ["train/b/1.png", "train/b/2.png", "train/a/1.jpg", "query/a/9.jpg"])
    (tmp_path / "query" / "b").mkdir()
    (tmp_path / "query" / "b" / "notes.txt").write_text("not an image")
    data = make_component("dataset", "image_folder", {"root": str(tmp_path)})
    assert data.class_names == ("a", "b")
    assert data.split("train").items == ["train/a/1.jpg", "train/b/1.png", "train/b/2.png"]
    assert data.split("query").items == ["query/a/9.jpg"]
    _tiny_tree(tmp_path, ["query/zebra/1.png"])
    with pytest.raises(DataError, match="query classes \\['zebra'\\]"):
        make_component("dataset", "image_folder", {"root": str(tmp_path)})


def test_list_file_multi_label(tmp_path):
    cfg = miniature("list_file", tmp_path)
    data = make_component("dataset", "list_file", cfg)
    assert data.class_names == ("red", "green", "blue")
    assert data.split("train").targets.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1], [1, 1, 0]]
    assert data.split("query").targets.tolist() == [[0, 1, 0], [1, 0, 1]]
    assert data.split("database") is data.split("train")
    root = Path(cfg["root"])
    (root / "db.txt").write_text("img/5.jpg 2\n")
    data = make_component("dataset", "list_file", {**cfg, "database_list": "db.txt", "expected_counts": {}})
    assert data.split("database").items == ["img/5.jpg"]
    (root / "query.txt").write_text("img/4.jpg 7\n")
    with pytest.raises(DataError, match="label 7 but .*classes.txt names only 3 classes"):
        make_component("dataset", "list_file", {**cfg, "expected_counts": {}})
    with pytest.raises(DataError, match="query_list not found"):
        make_component("dataset", "list_file", {**cfg, "query_list": "nope.txt"})


def test_bad_label_line_names_file_and_line(tmp_path):
    cfg = miniature("vegfru", tmp_path)
    lst = Path(cfg["root"]) / "vegfru_list" / "vegfru_train.txt"
    lst.write_text(lst.read_text() + "veg200_images/carrot/v_0_0.jpg two\n")
    with pytest.raises(DataError, match="vegfru_train.txt: label 'two' is not an integer"):
        make_component("dataset", "vegfru", cfg)


def test_corrupt_benchmark_image_reports_path(tmp_path):
    cfg = miniature("cub200", tmp_path)
    data = make_component("dataset", "cub200", cfg)
    bad = Path(cfg["root"]) / data.split("train").items[1]
    bad.write_bytes(b"\xff\xd8\xff truncated")
    with pytest.raises(DataError, match=str(bad)):
        ImageDataset(data.split("train"))[1]
    ds = ImageDataset(data.split("train"), skip_bad_images=True)
    with pytest.warns(RuntimeWarning):
        _, _, index = ds[1]
    assert index == 2 and ds.num_bad == 1
    assert torch.is_tensor(ds[0][0])
