"""``hashkit encode`` / ``hashkit search`` with an image query, on a tiny trained run."""

import json

import numpy as np
import pytest
import torch
from PIL import Image



@pytest.mark.slow
def test_encode_directory_then_search_by_image(tiny_run, tmp_path, capsys):
    from hashkit.cli.main import main
    from hashkit.codes.code_file import load_code_file
    from hashkit.codes.packing import pack_codes
    from hashkit.data.transforms import build_transform
    from hashkit.runs import load_run

    run = tiny_run
    images = tmp_path / "images"
    rng = np.random.default_rng(0)
    names = ["b/2.png", "a/1.png", "a/0.jpg", "c.png"]
    for name in names:
        (images / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(images / name)
    (images / "notes.txt").write_text("not an image")
    out = tmp_path / "codes.safetensors"
    assert main(["encode", str(run), "--images", str(images), "--out", str(out), "--no-progress"]) == 0
    f = load_code_file(out)
    assert f.paths == ("a/0.jpg", "a/1.png", "b/2.png", "c.png") and f.num_bits == 8
    assert f.metadata["protocol"] == "encoded_db" and len(f.metadata["recipe_hash"]) == 64
    loaded = load_run(run)  # independent encoding of the same files
    transform = build_transform(loaded.recipe.data.eval_transform)
    with torch.no_grad():
        batch = torch.stack([transform(Image.open(images / p).convert("RGB")) for p in f.paths])
        assert torch.equal(f.codes, pack_codes(loaded.model.encode(batch)))
    # the checkpoint path works too, and an image query finds itself at distance 0
    ckpt = run / "L8" / "checkpoint.safetensors"
    assert main(["encode", str(ckpt), "--images", str(images), "--out", str(tmp_path / "c2.safetensors"),
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["search", str(out), "--query", str(images / "b/2.png"), "-k", "4", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)[0]["results"]
    assert {"id": 2, "path": "b/2.png", "distance": 0} in hits
    assert main(["encode", str(run), "--images", str(tmp_path / "missing"), "--out", str(out), "--overwrite"]) == 2
    assert "no such image directory" in capsys.readouterr().err
