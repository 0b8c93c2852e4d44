"""Shared test setup: keep torch to one thread per test process and third-party plugins out of the way."""

from __future__ import annotations

import os

# Tests see only the built-in plugins unless a test opts in (pytester-style isolation, see docs/plugins.md).
os.environ.setdefault("HASHKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(int(os.environ.get("HASHKIT_TEST_THREADS", "1")))


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _default_dtype_is_restored():
    """Fail loudly if a test leaves torch's default dtype changed (it silently breaks later modules)."""
    yield
    assert torch.get_default_dtype() == torch.float32, "a test left torch's default dtype changed"


@pytest.fixture
def float64_default():
    """Run a test with float64 as torch's default dtype (references in float64); restored afterwards."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


#: overrides that shrink semicon-demo to a few seconds of training (4 images per class, one round)
SEMICON_TINY = ["data.dataset.train_per_class=4", "data.dataset.query_per_class=2", "protocol.rounds=1",
                "protocol.epochs=1", "protocol.num_samples=40", "train.progress=false"]


@pytest.fixture(scope="session")
def semicon_tiny_run(tmp_path_factory):
    """A tiny semicon-demo run (12 and 24 bits, SEM maps, learned + encoded databases), trained once per session
    and shared by the attention, gallery, serve and browser tests. Treat it as read-only."""
    from pathlib import Path

    from hashkit.training import train

    out = tmp_path_factory.mktemp("semicon-tiny") / "run"
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "semicon-demo.toml"
    train(recipe, out, overrides=SEMICON_TINY, code_lengths=[12, 24])
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A pointwise tiny_cnn run (8 bits, BatchNorm, batch-independent codes), one epoch."""
    import training_helpers as th
    from hashkit.training import train

    out = tmp_path_factory.mktemp("tiny") / "run"
    train(th.tiny_recipe(protocol={"name": "pointwise", "epochs": 1}), out)
    return out


@pytest.fixture(scope="session")
def served(semicon_tiny_run, tmp_path_factory):
    """``(base, photos, {bits: code file})``: demo query images in class folders (2 per class), encoded at 12
    and 24 bits by ``hashkit encode`` with the tiny run (for the search service tests). Read-only."""
    from hashkit.cli.main import main

    base = tmp_path_factory.mktemp("served")
    photos = base / "photos"
    assert main(["data", "images", "demo", "--split", "query", "--per-class", "2", "--out", str(photos)]) == 0
    files = {}
    for bits in (12, 24):
        files[bits] = base / f"codes{bits}.safetensors"
        assert main(["encode", str(semicon_tiny_run), "--code-length", str(bits), "--images", str(photos),
                     "--out", str(files[bits]), "--no-progress"]) == 0
    return base, photos, files
