"""Shared pieces of the training tests: tiny recipes, a BatchNorm-free test backbone, a subprocess entry.

Used by tests/test_training.py, test_resume.py, test_ddp.py and test_checkpoint.py (and by the subprocesses
they start: ``python tests/training_helpers.py train OUT RECIPE.json`` / ``... resume OUT``).
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import Tensor, nn

import hashkit
from hashkit.interfaces import Backbone, FeatureSpec, TrainingProtocol

# ------------------------------------------------------------------------------------ test-only components


@attrs.frozen
class PlainCNNConfig:
    width: int = 4


class PlainCNN(Backbone):
    """Two strided convs + ReLU, no BatchNorm: per-rank batch statistics cannot differ under DDP."""

    def __init__(self, cfg: PlainCNNConfig):
        super().__init__()
        w = cfg.width
        self.stage1 = nn.Sequential(nn.Conv2d(3, w, 3, stride=2, padding=1), nn.ReLU())
        self.stage2 = nn.Sequential(nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU())
        self.stage_specs = {"stage1": FeatureSpec(w, 2), "stage2": FeatureSpec(2 * w, 4)}
        self.extra_stage_specs = {}

    def forward(self, x: Tensor, taps) -> dict[str, Tensor]:
        s1 = self.stage1(x)
        out = {"stage1": s1, "stage2": self.stage2(s1)}
        return {k: out[k] for k in taps}


class NaNAfter(nn.Module):
    """A loss that is finite for ``after`` calls, then NaN (for the NaN-stop test)."""

    requires = ("codes",)

    def __init__(self, cfg):
        super().__init__()
        self.after = cfg.after
        self.calls = 0

    def forward(self, inputs):
        from hashkit.interfaces import LossResult

        self.calls += 1
        value = inputs.codes.float().pow(2).mean()
        bad = value * float("nan") if self.calls > self.after else value
        return LossResult(value=bad, parts={"square": value.detach()})


@attrs.frozen
class NaNAfterConfig:
    after: int = 3


class RefreshRecorder(TrainingProtocol):
    """Pointwise epochs that ask for embeddings of items 0..4 before every round and record what it gets."""

    provides: tuple[str, ...] = ()
    received: list[tuple[int, Tensor, Tensor]] = []

    def __init__(self, rounds: int):
        self.num_rounds, self.epochs_per_round = rounds, 1
        RefreshRecorder.received = []
        self._round = -1

    def embedding_request(self, round_index: int, generator: torch.Generator) -> Tensor:
        self._round = round_index
        return torch.arange(5)

    def refresh_embeddings(self, indices: Tensor, embeddings: Tensor) -> None:
        RefreshRecorder.received.append((self._round, indices.clone(), embeddings.clone()))


@attrs.frozen
class RefreshRecorderConfig:
    rounds: int = 2


class _TestPlugin:
    @hashkit.hookimpl
    def hashkit_register(self, register):
        register("backbone", "plain_cnn_test", lambda cfg, ctx: PlainCNN(cfg), config=PlainCNNConfig)
        register("loss", "nan_after_test", lambda cfg, ctx: NaNAfter(cfg), config=NaNAfterConfig)
        register("training_protocol", "refresh_recorder_test", lambda cfg, ctx: RefreshRecorder(cfg.rounds),
                 config=RefreshRecorderConfig)


def register_test_plugin() -> None:
    from hashkit.plugin_loader import _extra_plugins, add_plugin

    if not any(name == "training-tests" for name, _ in _extra_plugins):
        add_plugin(_TestPlugin(), name="training-tests")


# ------------------------------------------------------------------------------------------------ recipes
def tiny_recipe(**sections: Any) -> dict[str, Any]:
    """A pointwise tiny_cnn recipe on a small slice of the demo data (16 px); ``sections`` update tables."""
    recipe: dict[str, Any] = {
        "name": "tiny", "seed": 5, "code_lengths": [8],
        "model": {"backbone": {"name": "tiny_cnn", "width": 4}, "aggregation": {"name": "gap"},
                  "hash_head": {"name": "linear", "classifier": True}},
        "losses": [{"name": "cross_entropy"}],
        "protocol": {"name": "pointwise", "epochs": 2},
        "data": {"dataset": {"name": "demo", "train_per_class": 4, "query_per_class": 2}, "batch_size": 8,
                 "eval_batch_size": 16,
                 "train_transform": {"kind": "train", "crop": 16},
                 "eval_transform": {"kind": "eval", "resize": 18, "crop": 16}},
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
        "train": {"progress": False},
        "eval": {"database": ["encoded"]},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(recipe.get(key), dict):
            recipe[key] = {**recipe[key], **value}
        else:
            recipe[key] = value
    return copy.deepcopy(recipe)


def adsh_recipe(**sections: Any) -> dict[str, Any]:
    """tiny_cnn + ADSH loss and protocol (learned database), a few rounds."""
    base = tiny_recipe(
        code_lengths=[8],
        model={"backbone": {"name": "tiny_cnn", "width": 4}, "aggregation": {"name": "gap"},
               "hash_head": {"name": "linear"}},
        losses=[{"name": "adsh", "gamma": 200.0, "rescale_bits": 12}],
        protocol={"name": "adsh", "rounds": 3, "epochs": 2, "num_samples": 24, "gamma": 200.0},
        eval={"database": ["learned", "encoded"]},
    )
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


# -------------------------------------------------------------------------------------- reading results
def untrained_scores(recipe, code_length: int | None) -> dict[str, dict[str, Any]]:
    """Scores of ``recipe``'s model at initialisation, built as the trainer builds it (as ``hashkit baseline``).

    Keyed like a run's results (``"encoded"``, ``"descriptor"``); protocols with learned database codes are
    not supported here (no demo test needs them).
    """
    from hashkit.assemble import build
    from hashkit.training.evaluate import evaluate_model
    from hashkit.training.seeding import derive_seed, seed_globals

    seed_globals(derive_seed(recipe.seed, code_length, "init"))
    built = build(recipe, code_length)
    return evaluate_model(built.model.eval(), recipe, query=built.data.split("query"),
                          database=built.data.split("database"), learned=None, device=torch.device("cpu"),
                          kinds=("encoded",)).scores


def final_state(run_dir: Path, code_length: int) -> dict[str, Tensor]:
    """Model, protocol and optimiser tensors of the last checkpoint plus every code of the final evaluation."""
    from hashkit.training.checkpoint import load_checkpoint

    tensors, meta = load_checkpoint(Path(run_dir) / f"L{code_length}" / "checkpoint.safetensors")
    assert meta["position"]["finished"], meta["position"]
    out = {k: v for k, v in tensors.items() if k.startswith(("model.", "protocol.", "optim.", "losses."))}
    codes, _ = load_checkpoint(Path(run_dir) / f"L{code_length}" / "codes.safetensors")
    out.update({"codes." + k: v for k, v in codes.items()})
    return out


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HASHKIT_DISABLE_PLUGIN_AUTOLOAD="1",
               PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")]))
    return env


def install_self_kill(spec: str) -> None:
    """Make this process SIGKILL itself at a chosen point (the kill-and-resume test's fault injection).

    - ``write:N``: during the N-th write of a ``checkpoint.safetensors``: half the bytes are in the temp
      file (flushed and fsynced), then the process dies, leaving the temp file behind;
    - ``eval:BITS:N``: inside the N-th scoring call of a BITS-bit model's evaluation (after its codes were
      computed, before the metrics return).
    """
    import signal

    import hashkit.atomic_io as atomic_io
    import hashkit.training.evaluate as evaluate

    what, *args = spec.split(":")
    calls = [0]

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    if what == "write":
        original_write = atomic_io._write_all

        def write_all(fh, data, target):
            if target.name == "checkpoint.safetensors":
                calls[0] += 1
                if calls[0] == int(args[0]):
                    fh.write(data[: len(data) // 2])
                    fh.flush()
                    os.fsync(fh.fileno())
                    die()
            original_write(fh, data, target)

        atomic_io._write_all = write_all
    elif what == "eval":
        original_score = evaluate.score

        def score(query, *rest, **kwargs):
            if query.shape[1] == int(args[0]):
                calls[0] += 1
                if calls[0] == int(args[1]):
                    die()
            return original_score(query, *rest, **kwargs)

        evaluate.score = score
    else:
        raise SystemExit(f"unknown kill point {spec!r}")


def main(argv: list[str]) -> int:
    """``train OUT RECIPE.json`` or ``resume OUT``: the subprocess side of the kill-and-resume test
    (``HASHKIT_TEST_KILL`` = a kill point of :func:`install_self_kill`)."""
    torch.set_num_threads(1)
    register_test_plugin()
    if os.environ.get("HASHKIT_TEST_KILL"):
        install_self_kill(os.environ["HASHKIT_TEST_KILL"])
    from hashkit.training import train

    if argv[0] == "train":
        recipe = json.loads(Path(argv[2]).read_text())
        train(recipe, argv[1])
    elif argv[0] == "resume":
        train(None, argv[1], resume=True)
    else:
        raise SystemExit(f"unknown action {argv[0]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
