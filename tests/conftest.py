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
