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


# ----------------------------------------------------------------------------------- shared trained runs
RECIPES = __import__("pathlib").Path(__file__).resolve().parents[1] / "recipes"
#: a few-second SEMICON demo run (SEM with sigma = "batch": codes depend on the batch)
SEMICON_TINY = ["data.dataset.train_per_class=4", "data.dataset.query_per_class=2", "protocol.rounds=1",
                "protocol.epochs=1", "protocol.num_samples=40"]


@pytest.fixture(scope="session")
def semicon_tiny_run(tmp_path_factory):
    from hashkit.training import train

    out = tmp_path_factory.mktemp("semicon") / "run"
    train(RECIPES / "semicon-demo.toml", out, overrides=SEMICON_TINY, code_lengths=[12])
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A pointwise tiny_cnn run (8 bits, BatchNorm, batch-independent codes), one epoch."""
    import training_helpers as th
    from hashkit.training import train

    out = tmp_path_factory.mktemp("tiny") / "run"
    train(th.tiny_recipe(protocol={"name": "pointwise", "epochs": 1}), out)
    return out
