"""Kill-and-resume: a training subprocess killed with SIGKILL mid-run and resumed with ``hashkit train --resume``
ends with exactly the weights, learned database codes, optimiser state, evaluation codes and metrics log of an
uninterrupted run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import training_helpers as th

HELPER = Path(th.__file__)


def _recipe():
    # ADSH (stateful protocol: B, U, S, per-round sample) is the hardest case; best_query selection adds the
    # selected-model file. 2 code lengths x 3 rounds x 3 epochs x 4 batches = 72 steps.
    return th.adsh_recipe(
        code_lengths=[8, 12],
        protocol={"name": "adsh", "rounds": 3, "epochs": 3, "num_samples": 32, "gamma": 200.0},
        train={"progress": False, "checkpoint_every": 3, "selection": "best_query"},
    )


def _metrics(run_dir: Path, length: int) -> list[dict]:
    return [json.loads(line) for line in (run_dir / f"L{length}" / "metrics.jsonl").read_text().splitlines()]


def _run_killed(args: list[str], kill: str) -> None:
    """Run the training helper with a self-kill point; it must die by SIGKILL."""
    proc = subprocess.run([sys.executable, str(HELPER), *args], env={**th.subprocess_env(), "HASHKIT_TEST_KILL": kill},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, f"rc {proc.returncode}, not killed at {kill}:\n{proc.stdout[-2000:]}" \
        f"{proc.stderr[-3000:]}"


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    """Killed in the middle of a checkpoint write (L8), resumed and killed again in the middle of an evaluation
    (L12), resumed to the end: everything equals an uninterrupted run, and no temp file is left."""
    recipe = _recipe()
    recipe_file = tmp_path / "recipe.json"
    recipe_file.write_text(json.dumps(recipe))
    run_dir = tmp_path / "killed"
    _run_killed(["train", str(run_dir), str(recipe_file)], "write:3")
    leftovers = list((run_dir / "L8").glob(".checkpoint.safetensors.*.tmp"))
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 0, "the kill did not happen during a write"
    _run_killed(["resume", str(run_dir)], "eval:12:3")
    assert not leftovers[0].exists(), "resume did not remove the stale temp file"
    assert (run_dir / "L8" / "codes.safetensors").is_file() and not (run_dir / "report.json").exists()

    # the uninterrupted reference, in this process (same thread count, same code)
    from hashkit.training import train

    reference_dir = tmp_path / "reference"
    train(recipe, reference_dir)

    resumed = subprocess.run([sys.executable, "-m", "hashkit.cli.main", "train", "--resume", str(run_dir)],
                             env=th.subprocess_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "mAP" in resumed.stdout

    for length in (8, 12):
        ref = th.final_state(reference_dir, length)
        got = th.final_state(run_dir, length)
        assert sorted(ref) == sorted(got)
        for key in ref:
            assert torch.equal(ref[key], got[key]), f"L{length}: {key} differs after kill + resume"
        assert _metrics(run_dir, length) == _metrics(reference_dir, length)
    ref_report = json.loads((reference_dir / "report.json").read_text())["results"]
    got_report = json.loads((run_dir / "report.json").read_text())["results"]
    for length in ("8", "12"):
        for key in ("last", "selected", "selected_round", "steps"):
            assert got_report[length][key] == ref_report[length][key]
    assert not [p for p in run_dir.rglob("*.tmp")]


@pytest.mark.parametrize("hook, checkpoint_every, expected_position", [
    # right after the step-4 checkpoint: mid-round, mid-epoch
    ("save", 4, {"round": 0, "epoch": 1, "batch": 1, "step": 4, "finished": False}),
    # after round 1's "round" and "eval" log lines but before its checkpoint; the last checkpoint (step 6) is
    # the last step of that round, so the log lines must be cut by count, not by step
    ("_round_evaluation", 6, {"round": 0, "epoch": 1, "batch": 3, "step": 6, "finished": False}),
])
def test_resume_from_a_copied_run_directory(tmp_path, hook, checkpoint_every, expected_position):
    """Copy the run directory at a chosen moment (as a kill would leave it), resume the copy: it ends equal to
    the run it was copied from, metrics log included."""
    import shutil

    from hashkit.training import train
    from hashkit.training import trainer as trainer_mod

    recipe = th.adsh_recipe(train={"progress": False, "checkpoint_every": checkpoint_every,
                                   "selection": "best_query"})
    original = getattr(trainer_mod.LengthTrainer, hook)
    copies = []

    def hooked(self, *args):
        if hook == "save":
            original(self, *args)
        if not copies:
            shutil.copytree(tmp_path / "full", tmp_path / "copy")
            copies.append(self.position.step)
        if hook != "save":
            original(self, *args)

    setattr(trainer_mod.LengthTrainer, hook, hooked)
    try:
        train(recipe, tmp_path / "full")
    finally:
        setattr(trainer_mod.LengthTrainer, hook, original)
    copy = tmp_path / "copy"
    assert json.loads((copy / "L8" / "checkpoint.json").read_text())["position"] == expected_position
    train(None, copy, resume=True)
    ref, got = th.final_state(tmp_path / "full", 8), th.final_state(copy, 8)
    for key in ref:
        assert torch.equal(ref[key], got[key]), key
    assert _metrics(copy, 8) == _metrics(tmp_path / "full", 8)


def test_new_run_refuses_existing_directory(tmp_path):
    from hashkit.errors import CheckpointError, OutputError
    from hashkit.training import train

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "something").write_text("x")
    with pytest.raises(OutputError, match="exists and is not empty"):
        train(th.tiny_recipe(), tmp_path / "run")
    with pytest.raises(CheckpointError, match="not a hashkit run directory"):
        train(None, tmp_path / "run", resume=True)


def test_resuming_a_finished_run_changes_nothing(tmp_path):
    from hashkit.training import train

    run = tmp_path / "run"
    first = train(th.tiny_recipe(), run)
    before = th.final_state(run, 8)
    second = train(None, run, resume=True)
    after = th.final_state(run, 8)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert first["results"]["8"]["last"] == second["results"]["8"]["last"]


def test_resume_refuses_overrides_that_change_the_run(tmp_path, capsys):
    from hashkit.cli.main import main
    from hashkit.errors import RecipeError
    from hashkit.training import train

    run = tmp_path / "run"
    train(th.tiny_recipe(protocol={"name": "pointwise", "epochs": 1}), run)
    saved = (run / "recipe.toml").read_text()
    for override in ({"data.batch_size": 4}, {"optimizer.lr": 0.5}, ["model.backbone.width=8"],
                     {"eval.topk": [0, 10]}):
        key = next(iter(override)) if isinstance(override, dict) else override[0].split("=")[0]
        with pytest.raises(RecipeError, match=f"cannot change {key} when resuming"):
            train(None, run, resume=True, overrides=override)
    with pytest.raises(RecipeError, match="drop the recipe argument"):
        train(th.tiny_recipe(), run, resume=True)
    assert main(["train", "semicon-demo", "--resume", str(run)]) == 2
    assert "drop semicon-demo" in capsys.readouterr().err
    # resume-safe keys, and values equal to the run's own, are accepted and recorded
    train(None, run, resume=True, overrides={"train.device": "cpu", "data.num_workers": 0, "data.batch_size": 8})
    env = json.loads((run / "environment.json").read_text())
    assert env["overrides"] == {"train.device": "cpu", "data.num_workers": 0, "data.batch_size": 8}
    assert main(["train", "--resume", str(run), "--no-progress", "--device", "cpu"]) == 0
    env = json.loads((run / "environment.json").read_text())
    assert env["overrides"] == {"train.device": "cpu", "train.progress": False}
    assert env["resumed_from"][-1]["overrides"]["data.batch_size"] == 8  # the history keeps earlier sessions
    assert (run / "recipe.toml").read_text() == saved
