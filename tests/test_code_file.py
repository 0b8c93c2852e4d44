"""Code files: round trip, and clear CodeFileErrors for truncated, tampered or inconsistent files."""

import numpy as np
import pytest
import torch

from hashkit.codes.code_file import load_code_file, save_code_file
from hashkit.codes.packing import pack_codes
from hashkit.errors import CodeFileError

from file_faults import flip_byte, rewrite_header


def write(tmp_path, n=20, bits=12, **kw):
    rng = np.random.default_rng(0)
    codes = pack_codes(rng.choice([-1.0, 1.0], (n, bits)))
    path = save_code_file(tmp_path / "codes.safetensors", codes, bits, **kw)
    return path, codes


def test_round_trip_with_paths_labels_ids_metadata(tmp_path):
    labels = torch.eye(4)[torch.arange(20) % 4]
    paths = [f"class_{i % 4}/imä{i}.jpg" for i in range(20)]
    path, codes = write(tmp_path, paths=paths, labels=labels, ids=list(range(100, 120)), recipe_hash="abc",
                        protocol="encoded_db", extra={"run_dir": "/x"})
    f = load_code_file(path)
    assert torch.equal(f.codes, codes) and f.num_bits == 12 and len(f) == 20
    assert f.paths == tuple(paths) and torch.equal(f.labels, labels)
    assert f.ids.tolist() == list(range(100, 120))
    assert f.metadata["bit_order"] == "msb0" and f.metadata["recipe_hash"] == "abc"
    assert f.metadata["protocol"] == "encoded_db" and f.metadata["extra.run_dir"] == "/x"
    assert f.metadata["hashkit_version"]


def test_truncated_file(tmp_path):
    path, _ = write(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:-7])
    with pytest.raises(CodeFileError, match="truncated or corrupt"):
        load_code_file(path)


def test_tampered_codes_fail_the_checksum(tmp_path):
    path, _ = write(tmp_path)
    flip_byte(path, "codes", 0, 0x80)
    with pytest.raises(CodeFileError, match="sha256 checksum"):
        load_code_file(path)


@pytest.mark.parametrize("tensor, offset", [
    ("paths_utf8", 3),     # a garbled path
    ("ids", 0),            # id 0 -> 1 (the issue: id 0 silently became 64)
    ("labels", 2),
    ("descriptors", 5),
])
def test_every_tensor_is_covered_by_the_checksum(tmp_path, tensor, offset):
    paths = [f"dir/img{i}.jpg" for i in range(20)]
    path, _ = write(tmp_path, paths=paths, labels=torch.eye(4)[torch.arange(20) % 4],
                    descriptors=torch.randn(20, 6))
    assert load_code_file(path).paths == tuple(paths)
    flip_byte(path, tensor, offset)
    with pytest.raises(CodeFileError, match="sha256 checksum"):
        load_code_file(path)


@pytest.mark.parametrize("edit, message", [
    ({"num_bits": "20"}, "20 bits"),                    # another byte width: the shape check names it
    ({"bit_order": "lsb0"}, "bit_order"),
    ({"num_bits": "16"}, "sha256 checksum"),            # same byte width as 12 bits: only the checksum can tell
    ({"extra.code_length": "16"}, "sha256 checksum"),
    ({"recipe_hash": "0" * 64}, "sha256 checksum"),
    ({"skipped": "[]"}, "sha256 checksum"),
    ({"comment": "hi"}, "unexpected metadata"),
    ({"format_version": "1"}, "re-encode"),
])
def test_edited_header_is_refused(tmp_path, edit, message):
    path, _ = write(tmp_path, extra={"code_length": 12})
    rewrite_header(path, lambda h: h["__metadata__"].update(edit))
    with pytest.raises(CodeFileError, match=message):
        load_code_file(path)


def test_non_utf8_file_names_round_trip_losslessly(tmp_path):
    import os

    raw = b"caf\xe9-latin1.jpg"          # not valid UTF-8
    name = os.fsdecode(raw)               # how Python lists it on POSIX (surrogate escape)
    path, _ = write(tmp_path, n=3, paths=[name, "ok/ü.jpg", "x.png"], skipped=[("bad.png", "cannot read")])
    f = load_code_file(path)
    assert f.paths[0] == name and os.fsencode(f.paths[0]) == raw
    assert f.paths[1] == "ok/ü.jpg" and f.skipped == [("bad.png", "cannot read")]
    from hashkit.codes.code_file import printable_path

    assert printable_path(f.paths[0]) == "caf\\xe9-latin1.jpg"


def test_not_a_hashkit_file(tmp_path):
    from safetensors.numpy import save_file

    save_file({"codes": np.zeros((2, 2), np.uint8)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(CodeFileError, match="metadata lacks"):
        load_code_file(tmp_path / "x.safetensors")
    with pytest.raises(CodeFileError, match="no such"):
        load_code_file(tmp_path / "missing.safetensors")


def test_save_rejects_inconsistent_input(tmp_path):
    with pytest.raises(CodeFileError, match="uint8"):
        save_code_file(tmp_path / "a.safetensors", np.zeros((3, 2), np.uint8), 24)
    with pytest.raises(CodeFileError, match="padding"):
        save_code_file(tmp_path / "a.safetensors", np.full((3, 2), 255, np.uint8), 12)
    with pytest.raises(CodeFileError, match="unique"):
        save_code_file(tmp_path / "a.safetensors", np.zeros((3, 2), np.uint8), 16, ids=[1, 1, 2])
    with pytest.raises(CodeFileError, match="labels"):
        save_code_file(tmp_path / "a.safetensors", np.zeros((3, 2), np.uint8), 16, labels=torch.zeros(2, 3))
    assert not list(tmp_path.iterdir())
