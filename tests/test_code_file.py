"""Code files: round trip, and clear CodeFileErrors for truncated, tampered or inconsistent files."""

import json
import struct

import numpy as np
import pytest
import torch

from hashkit.codes.code_file import load_code_file, save_code_file
from hashkit.codes.packing import pack_codes
from hashkit.errors import CodeFileError


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


def _rewrite_header(path, edit):
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size])
    edit(header)
    raw = json.dumps(header).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + size:])


def test_tampered_header_num_bits(tmp_path):
    path, _ = write(tmp_path)
    _rewrite_header(path, lambda h: h["__metadata__"].update(num_bits="20"))
    with pytest.raises(CodeFileError, match="20 bits"):
        load_code_file(path)


def test_tampered_header_bit_order(tmp_path):
    path, _ = write(tmp_path)
    _rewrite_header(path, lambda h: h["__metadata__"].update(bit_order="lsb0"))
    with pytest.raises(CodeFileError, match="bit_order"):
        load_code_file(path)


def test_tampered_codes_fail_the_checksum(tmp_path):
    path, _ = write(tmp_path)
    data = bytearray(path.read_bytes())
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size])
    start = 8 + size + header["codes"]["data_offsets"][0]
    data[start] ^= 0x80
    path.write_bytes(bytes(data))
    with pytest.raises(CodeFileError, match="sha256 checksum"):
        load_code_file(path)


def _flip_byte(path, tensor, offset=0):
    data = bytearray(path.read_bytes())
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size])
    data[8 + size + header[tensor]["data_offsets"][0] + offset] ^= 0x01
    path.write_bytes(bytes(data))


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
    _flip_byte(path, tensor, offset)
    with pytest.raises(CodeFileError, match="sha256 checksum"):
        load_code_file(path)


@pytest.mark.parametrize("edit", [
    {"num_bits": "16"},                 # same byte width as 12 bits: only the checksum can tell
    {"extra.code_length": "16"},
    {"recipe_hash": "0" * 64},
    {"skipped": "[]"},
])
def test_metadata_giving_meaning_to_the_codes_is_covered(tmp_path, edit):
    path, _ = write(tmp_path, extra={"code_length": 12})
    _rewrite_header(path, lambda h: h["__metadata__"].update(edit))
    with pytest.raises(CodeFileError, match="sha256 checksum"):
        load_code_file(path)


def test_unexpected_metadata_and_old_format_are_refused(tmp_path):
    path, _ = write(tmp_path)
    _rewrite_header(path, lambda h: h["__metadata__"].update(comment="hi"))
    with pytest.raises(CodeFileError, match="unexpected metadata"):
        load_code_file(path)
    path, _ = write(tmp_path)
    _rewrite_header(path, lambda h: h["__metadata__"].update(format_version="1"))
    with pytest.raises(CodeFileError, match="re-encode"):
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
