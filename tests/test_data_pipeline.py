"""ImageDataset, readers, transforms, samplers and the shipped demo data."""

from __future__ import annotations

import gzip
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from hashkit.assemble import make_component
from hashkit.data.image_dataset import ImageDataset
from hashkit.data.readers import ArrayImageReader, FileImageReader
from hashkit.data.samplers import epoch_batches
from hashkit.data.transforms import build_transform
from hashkit.errors import DataError, RecipeError
from hashkit.interfaces import Split
from hashkit.recipe.schema import SamplerSection, TransformSection
from hashkit.testing import check_component

FMNIST = Path("/usr/share/datasets/fashion-mnist")


# -- demo data ---------------------------------------------------------------------------------------------

def test_demo_default_sizes_and_protocol():
    data = make_component("dataset", "demo", {})
    assert data.num_classes == 10
    assert len(data.split("train")) == 1000 and len(data.split("query")) == 300
    assert data.split("database") is data.split("train")
    counts = data.split("query").targets.sum(0)
    assert torch.equal(counts, torch.full((10,), 30.0))
    img = data.split("train").reader(data.split("train").items[0])
    assert img.mode == "RGB" and img.size == (28, 28)
    r, g, b = (np.asarray(c) for c in img.split())
    assert (r == g).all() and (g == b).all()


def test_demo_class_subset_relabels_in_given_order():
    data = make_component("dataset", "demo", {"train_per_class": 3, "query_per_class": 2, "classes": [9, 1]})
    assert data.class_names == ("Ankle boot", "Trouser")
    assert data.split("train").targets.argmax(1).tolist() == [0, 0, 0, 1, 1, 1]


def test_demo_rejects_more_than_stored():
    with pytest.raises(RecipeError, match="train_per_class"):
        make_component("dataset", "demo", {"train_per_class": 201})


@pytest.mark.skipif(not FMNIST.exists(), reason="Debian dataset-fashion-mnist not installed")
def test_demo_images_are_the_upstream_fashion_mnist_rows():
    def idx(name, offset):
        with gzip.open(FMNIST / name) as fh:
            return np.frombuffer(fh.read(), np.uint8, offset=offset)

    images = idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    labels = idx("t10k-labels-idx1-ubyte.gz", 8)
    data = make_component("dataset", "demo", {"query_per_class": 5, "classes": [3]})
    expected_rows = [i for i, lab in enumerate(labels) if lab == 3][:5]
    q = data.split("query")
    for item, row in zip(q.items, expected_rows):
        got = np.asarray(q.reader(item))[:, :, 0]
        assert np.array_equal(got, images[row])


def test_demo_conformance():
    check_component("dataset", "demo")


# -- readers and ImageDataset ------------------------------------------------------------------------------

def _write_images(root: Path, n: int, size=(12, 10)) -> list[str]:
    items = []
    for i in range(n):
        rel = f"c{i % 2}/img{i}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((size[1], size[0], 3), i * 20, np.uint8)).save(root / rel)
        items.append(rel)
    return items


def _split(root: Path, items: list[str]) -> Split:
    targets = torch.nn.functional.one_hot(torch.arange(len(items)) % 2, 2).float()
    return Split(items=items, targets=targets, reader=FileImageReader(root))


def test_file_reader_is_picklable_and_converts_to_rgb(tmp_path):
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(tmp_path / "g.png")
    Image.new("RGBA", (4, 4), (255, 0, 0, 0)).save(tmp_path / "a.png")
    reader = pickle.loads(pickle.dumps(FileImageReader(tmp_path)))
    assert reader("g.png").mode == "RGB" and reader("g.png").size == (7, 5)
    assert reader("a.png").getpixel((0, 0)) == (255, 255, 255)  # transparent -> white background


def test_array_reader_gray_and_rgb():
    gray = ArrayImageReader(np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4))
    assert gray("1").getpixel((1, 0)) == (13, 13, 13)
    rgb = ArrayImageReader(np.zeros((1, 2, 2, 3), np.uint8))
    assert rgb("0").mode == "RGB"
    with pytest.raises(DataError, match=r"<array>\[5\]"):
        gray("5")
    with pytest.raises(DataError, match="uint8"):
        ArrayImageReader(np.zeros((1, 2, 2), np.float32))


def test_image_dataset_returns_image_target_index(tmp_path):
    items = _write_images(tmp_path, 4)
    ds = ImageDataset(_split(tmp_path, items))
    img, target, index = ds[3]
    assert img.shape == (3, 10, 12) and img.dtype == torch.float32
    assert torch.allclose(img, torch.full_like(img, 60 / 255))
    assert target.tolist() == [0.0, 1.0] and index == 3
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch[0].shape == (4, 3, 10, 12) and batch[2].tolist() == [0, 1, 2, 3]


def test_corrupt_image_fails_with_its_path(tmp_path):
    items = _write_images(tmp_path, 4)
    (tmp_path / items[1]).write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    ds = ImageDataset(_split(tmp_path, items))
    with pytest.raises(DataError, match=str(tmp_path / items[1]).replace("\\", "\\\\")):
        ds[1]
    (tmp_path / items[2]).unlink()
    with pytest.raises(DataError, match="image not found: .*img2.png"):
        ds[2]


def test_skip_bad_images_substitutes_next_good_and_counts(tmp_path):
    items = _write_images(tmp_path, 5)
    (tmp_path / items[1]).write_bytes(b"garbage")
    (tmp_path / items[2]).write_bytes(b"")
    ds = ImageDataset(_split(tmp_path, items), skip_bad_images=True)
    with pytest.warns(RuntimeWarning, match="skipping bad image"):
        img, target, index = ds[1]
    assert index == 3 and target.tolist() == [0.0, 1.0]  # item 3's own target (3 % 2 = 1)
    assert sorted(ds.bad_items) == [1, 2] and ds.num_bad == 2
    loader = torch.utils.data.DataLoader(ds, batch_size=5)
    images, _, indices = next(iter(loader))
    assert images.shape[0] == 5 and indices.tolist() == [0, 3, 3, 3, 4]
    assert ds.num_bad == 2  # not re-read nor re-counted


def test_scan_counts_every_bad_image(tmp_path):
    items = _write_images(tmp_path, 4)
    (tmp_path / items[0]).write_bytes(b"x")
    with pytest.raises(DataError, match="img0.png"):
        ImageDataset(_split(tmp_path, items)).scan()
    ds = ImageDataset(_split(tmp_path, items), skip_bad_images=True)
    with pytest.warns(RuntimeWarning):
        bad = ds.scan()
    assert list(bad) == [0]


# -- transforms --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["train", "eval"])
@pytest.mark.parametrize("mode,size", [("L", (28, 28)), ("RGB", (50, 37)), ("RGBA", (20, 64))])
def test_transform_output_shape(kind, mode, size):
    tf = build_transform(TransformSection(kind=kind, resize=32, crop=24))
    out = tf(Image.new(mode, size))
    assert out.shape == (3, 24, 24) and out.dtype == torch.float32


def test_eval_transform_resizes_shorter_side_then_center_crops_and_normalises():
    # a 40x20 image: left half 0, right half 255 -> Resize(10) gives 20x10, CenterCrop(10) keeps columns 5..14
    arr = np.zeros((20, 40), np.uint8)
    arr[:, 20:] = 255
    tf = build_transform(TransformSection(kind="eval", resize=10, crop=10, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)))
    out = tf(Image.fromarray(arr))
    assert out.shape == (3, 10, 10)
    assert torch.allclose(out[:, :, :4], torch.full((3, 10, 4), -1.0))
    assert torch.allclose(out[:, :, 6:], torch.full((3, 10, 4), 1.0))


def test_transform_validation():
    with pytest.raises(RecipeError, match="crop 300 is larger than resize 256"):
        build_transform(TransformSection(kind="eval", crop=300))
    with pytest.raises(RecipeError, match="scale"):
        build_transform(TransformSection(kind="train", scale=(0.5, 0.2)))


def test_train_transform_is_random_but_seeded():
    tf = build_transform(TransformSection(kind="train", crop=16))
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    torch.manual_seed(1)
    a = tf(img)
    torch.manual_seed(1)
    b = tf(img)
    assert torch.equal(a, b)
    draws = [tf(img) for _ in range(4)]
    assert any(not torch.equal(draws[0], d) for d in draws[1:])


# -- samplers ----------------------------------------------------------------------------------------------

def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", ["random", "sequential"])
@pytest.mark.parametrize("drop_last", [False, True])
def test_random_and_sequential_cover_indices(name, drop_last):
    idx = torch.arange(100, 123)
    batches = epoch_batches(idx, torch.zeros(23), 5, SamplerSection(name=name), _gen(), drop_last)
    sizes = [len(b) for b in batches]
    assert sizes == ([5] * 4 if drop_last else [5] * 4 + [3])
    flat = torch.cat(batches)
    assert len(set(flat.tolist())) == len(flat) and set(flat.tolist()) <= set(idx.tolist())
    if name == "sequential":
        assert flat.tolist() == idx.tolist()[: len(flat)]


def test_batches_are_deterministic_given_generator():
    idx = torch.arange(60)
    labels = torch.arange(60) % 6
    for sampler in (SamplerSection(name="random"), SamplerSection(name="pk", p=3, k=4)):
        bs = sampler.p * sampler.k if sampler.name == "pk" else 7
        a = epoch_batches(idx, labels, bs, sampler, _gen(3), False)
        b = epoch_batches(idx, labels, bs, sampler, _gen(3), False)
        c = epoch_batches(idx, labels, bs, sampler, _gen(4), False)
        assert [x.tolist() for x in a] == [x.tolist() for x in b]
        assert [x.tolist() for x in a] != [x.tolist() for x in c]


def test_pk_batch_size_must_match():
    with pytest.raises(RecipeError, match="p x k"):
        epoch_batches(torch.arange(8), torch.zeros(8), 5, SamplerSection(name="pk", p=2, k=2), _gen(), False)


@settings(max_examples=40, deadline=None)
@given(counts=st.lists(st.integers(1, 12), min_size=1, max_size=8), p=st.integers(1, 4), k=st.integers(1, 4),
       seed=st.integers(0, 1000), drop_last=st.booleans())
def test_pk_batches_have_p_classes_by_k_images(counts, p, k, seed, drop_last):
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    idx = torch.arange(len(labels)) + 1000  # dataset indices differ from positions
    batches = epoch_batches(idx, labels, p * k, SamplerSection(name="pk", p=p, k=k), _gen(seed), drop_last)
    label_of = {int(i): int(l) for i, l in zip(idx, labels)}
    for b in batches:
        per_class = Counter(label_of[int(i)] for i in b)
        assert all(v == k for v in per_class.values()), per_class  # K images of each class in the batch
        assert len(per_class) == len(b) // k
        if drop_last:
            assert len(b) == p * k
    # full batches exist whenever at least P classes still have images: the first batch is full iff P <= #classes
    if len(counts) >= p:
        assert batches and len(batches[0]) == p * k
    else:
        assert (not batches) if drop_last else len(batches[0]) == len(counts) * k
    # every image appears at least once per epoch unless its batch was dropped
    if not drop_last:
        assert set(torch.cat(batches).tolist()) == set(idx.tolist())
    # padding repeats images only within groups that were short
    expected_images = sum(-(-n // k) * k for n in counts)
    if not drop_last:
        assert sum(len(b) for b in batches) == expected_images


@settings(max_examples=25, deadline=None)
@given(n=st.integers(4, 40), c=st.integers(2, 6), seed=st.integers(0, 100))
def test_pk_multi_label_uses_each_image_once_under_one_of_its_labels(n, c, seed):
    g = torch.Generator().manual_seed(seed)
    multi = (torch.rand(n, c, generator=g) < 0.4).float()
    multi[torch.arange(n), torch.randint(c, (n,), generator=g)] = 1.0  # every image has a label
    k = 2
    batches = epoch_batches(torch.arange(n), multi, 2 * k, SamplerSection(name="pk", p=2, k=k), _gen(seed), False)
    seen = torch.cat(batches)
    assert set(seen.tolist()) == set(range(n))
    for b in batches:
        # each group of K shares a label
        for g0 in range(0, len(b), k):
            group = b[g0:g0 + k]
            assert (multi[group].prod(0) > 0).any()
