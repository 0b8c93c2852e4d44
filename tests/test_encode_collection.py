"""Encoding a real collection: bad files skipped and listed, a killed encode continues where it stopped, odd file
names kept losslessly, huge images refused with the limit named, batch-dependent codes warned about, descriptor
re-ranking, and the one-call Python helper."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hashkit.cli.main import main
from hashkit.codes.code_file import load_code_file


def make_images(folder: Path, n: int, size: int = 20) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    names = []
    for i in range(n):
        name = f"img{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / name)
        names.append(name)
    return names


def encode(run, images, out, *extra) -> int:
    return main(["encode", str(run), "--images", str(images), "--out", str(out), "--no-progress", *extra])


def reference_codes(run, folder: Path, names: list[str]) -> torch.Tensor:
    """Codes computed independently: the run's model in eval mode on the transformed images, one at a time."""
    from hashkit.codes.packing import pack_codes
    from hashkit.data.transforms import build_transform
    from hashkit.runs import load_run

    loaded = load_run(run)
    transform = build_transform(loaded.recipe.data.eval_transform)
    with torch.no_grad():
        codes = [torch.sign(loaded.model.eval()(transform(Image.open(folder / n).convert("RGB"))[None]).codes)
                 for n in names]
    return pack_codes(torch.cat(codes).where(torch.cat(codes) != 0, torch.ones(1)))


def test_bad_images_stop_in_one_line_or_are_skipped_and_listed(tiny_run, tmp_path, capsys):
    names = make_images(tmp_path / "images", 5)
    (tmp_path / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "codes.safetensors"
    assert encode(tiny_run, tmp_path / "images", out, "--num-workers", "1") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken.png" in err[0] and "--skip-bad-images" in err[0]  # no worker traceback
    assert encode(tiny_run, tmp_path / "images", out, "--skip-bad-images", "--overwrite") == 0
    err = capsys.readouterr().err
    assert "skipped 1 unreadable image" in err and "broken.png: cannot read image" in err
    f = load_code_file(out)
    assert f.paths == tuple(names) and [p for p, _ in f.skipped] == ["broken.png"]
    assert f.ids.tolist() == [1, 2, 3, 4, 5]  # positions in the sorted listing; broken.png was position 0
    assert torch.equal(f.codes, reference_codes(tiny_run, tmp_path / "images", names))


def test_a_killed_encode_continues_where_it_stopped(tiny_run, tmp_path, capsys, monkeypatch):
    import hashkit.codes.encoder as encoder

    names = make_images(tmp_path / "images", 7)
    full = tmp_path / "full.safetensors"
    assert encode(tiny_run, tmp_path / "images", full, "--chunk-size", "2") == 0
    original, calls = encoder.encode_images, []

    def dies_on_third_chunk(*args, **kwargs):
        calls.append(len(args[3]))
        if len(calls) == 3:
            raise KeyboardInterrupt  # what a kill would leave: two finished chunks on disk
        return original(*args, **kwargs)

    monkeypatch.setattr(encoder, "encode_images", dies_on_third_chunk)
    out = tmp_path / "codes.safetensors"
    assert encode(tiny_run, tmp_path / "images", out, "--chunk-size", "2") == 130
    partial = Path(str(out) + ".partial")
    assert sorted(p.name for p in partial.glob("chunk-*")) == ["chunk-000000.safetensors", "chunk-000001.safetensors"]
    assert not out.exists()
    calls.clear()
    monkeypatch.setattr(encoder, "encode_images", lambda *a, **k: calls.append(len(a[3])) or original(*a, **k))
    assert encode(tiny_run, tmp_path / "images", out, "--chunk-size", "2") == 0
    assert calls == [2, 1] and "resuming: 4 of 7 images" in capsys.readouterr().err
    a, b = load_code_file(out), load_code_file(full)
    assert torch.equal(a.codes, b.codes) and a.paths == b.paths == tuple(names) and torch.equal(a.ids, b.ids)
    assert not partial.exists()
    # another model or other images never mix with the chunks of a different job
    Path(str(out) + ".partial").mkdir()
    (partial / "job.json").write_text(json.dumps({"other": "job"}))
    assert encode(tiny_run, tmp_path / "images", tmp_path / "x.safetensors") == 0  # unrelated output: fine
    assert encode(tiny_run, tmp_path / "images", out, "--overwrite", "--chunk-size", "3") == 0
    assert torch.equal(load_code_file(out).codes, b.codes)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file names are bytes")
def test_a_file_name_that_is_not_utf8_is_kept_and_searchable(tiny_run, tmp_path, capsys):
    folder = tmp_path / "images"
    make_images(folder, 2)
    raw = os.fsencode(folder) + b"/caf\xe9.png"  # Latin-1 e-acute: not valid UTF-8
    Image.fromarray(np.full((20, 20, 3), 200, np.uint8)).save(raw.decode("utf-8", "surrogateescape"))
    out = tmp_path / "codes.safetensors"
    assert encode(tiny_run, folder, out) == 0
    f = load_code_file(out)
    odd = [p for p in f.paths if p.startswith("caf")][0]
    assert os.fsencode(odd) == b"caf\xe9.png" and (folder / odd).is_file()
    capsys.readouterr()
    assert main(["search", str(out), "--query", str(folder / odd), "-k", "3"]) == 0
    text = capsys.readouterr().out
    assert "d=  0  caf\\xe9.png" in text  # shown escaped, stored raw


def _png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width x height`` (no pixel data is needed to trip the size check)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def test_huge_images_are_refused_with_the_limit_and_the_option(tiny_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HASHKIT_MAX_IMAGE_PIXELS", "")  # the default; restored after the test (the CLI sets it)
    folder = tmp_path / "images"
    make_images(folder, 1)
    (folder / "bomb.png").write_bytes(_png_header_claiming(20000, 20000))
    out = tmp_path / "codes.safetensors"
    assert encode(tiny_run, folder, out) == 2
    line = capsys.readouterr().err.strip()
    assert "20000x20000 = 400,000,000 pixels" in line and "178,956,970" in line and "--max-image-pixels" in line
    # the limit is an option: lowered, it refuses the 20x20 image too
    assert encode(tiny_run, folder, out, "--skip-bad-images", "--max-image-pixels", "100") == 0
    assert sorted(p for p, _ in load_code_file(out).skipped) == ["bomb.png", "img00.png"]


def test_batch_dependent_codes_are_warned_about(semicon_tiny_run, tiny_run, tmp_path, capsys):
    folder = tmp_path / "images"
    make_images(folder, 3, size=32)
    out = tmp_path / "codes.safetensors"
    assert encode(semicon_tiny_run, folder, out) == 0
    assert "codes depend on the other images in a batch" in capsys.readouterr().err
    assert load_code_file(out).metadata["extra.batch_dependent"] == "true"
    assert main(["search", str(out), "--query", str(folder / "img00.png")]) == 0
    assert "codes depend on the other images in a batch" in capsys.readouterr().err
    assert encode(tiny_run, folder, tmp_path / "plain.safetensors") == 0
    assert "warning" not in capsys.readouterr().err


def test_rerank_orders_hamming_candidates_by_descriptor_cosine(tiny_run, tmp_path, capsys):
    from hashkit.codes.packing import unpack_codes

    folder = tmp_path / "images"
    names = make_images(folder, 12)
    out = tmp_path / "codes.safetensors"
    assert encode(tiny_run, folder, out, "--descriptors") == 0
    capsys.readouterr()
    assert main(["search", str(out), "--query", str(out), "-k", "4", "--rerank", "--candidates", "8",
                 "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    f = load_code_file(out)
    desc = f.descriptors.double()
    unit = desc / desc.norm(dim=1, keepdim=True)
    signs = torch.as_tensor(unpack_codes(f.codes.numpy(), 8)).double()
    dist = ((8 - signs @ signs.T) / 2).round().long()  # Hamming distance of +-1 codes
    for qi, entry in enumerate(results):
        # independent: the 8 nearest by (distance, index), then by decreasing cosine
        cand = sorted(range(len(names)), key=lambda j: (int(dist[qi, j]), j))[:8]
        expected = sorted(cand, key=lambda j: (-float(unit[qi] @ unit[j]), int(dist[qi, j]), cand.index(j)))[:4]
        assert [hit["id"] for hit in entry["results"]] == expected
        if qi in cand:  # an image is its own best match by cosine
            assert entry["results"][0]["id"] == qi and abs(entry["results"][0]["cosine"] - 1.0) < 1e-9
    assert main(["search", str(tmp_path / "codes.safetensors"), "--query", str(folder / names[0]), "--rerank"]) == 0
    capsys.readouterr()
    plain = tmp_path / "plain.safetensors"
    assert encode(tiny_run, folder, plain) == 0
    assert main(["search", str(plain), "--query", str(plain), "--rerank"]) == 2
    assert "encode --descriptors" in capsys.readouterr().err


def test_python_encode_is_eval_mode_and_batch_independent(tmp_path):
    import hashkit
    import training_helpers as th
    from hashkit.data.transforms import build_transform
    from hashkit.recipe.schema import TransformSection

    model = hashkit.build(th.tiny_recipe()).model
    assert model.training  # a fresh model is in training mode ...
    folder = tmp_path / "images"
    names = make_images(folder, 4, size=16)
    pil = [Image.open(folder / n).convert("RGB") for n in names]
    transform = build_transform(TransformSection(kind="eval", resize=18, crop=16))
    together = hashkit.encode(model, [folder / n for n in names], transform=transform)
    alone = torch.cat([hashkit.encode(model, [img], transform=transform) for img in pil])
    assert model.training  # ... and stays so after encoding
    assert torch.equal(together, alone) and together.shape == (4, 8)
    batch = torch.stack([transform(img) for img in pil])
    assert torch.equal(model.encode(batch)[1:2], model.encode(batch[1:2]))  # BatchNorm uses running stats
    model.eval()
    with torch.no_grad():
        expected = torch.sign(model(batch).codes)
    assert torch.equal(together, torch.where(expected == 0, torch.ones_like(expected), expected))
