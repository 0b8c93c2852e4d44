"""Output locations and write failures: checked before any work, reported in one line (exit 2), no partial
files, nothing left behind by a start that fails, file modes that honour the umask.

The full disk is simulated by failing the write inside :func:`hashkit.atomic_io.atomic_write_bytes` (after
part of the data reached the temp file), so CI always runs it; a real read-only mount and a real full tmpfs
are tried in a user namespace and skipped where the machine does not allow mounting.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import training_helpers as th
from hashkit.cli.main import main
from hashkit.recipe.toml_writer import dumps_toml


def recipe_file(tmp_path: Path, **sections) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(dumps_toml(th.tiny_recipe(**sections)))
    return path


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("hashkit: error:")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]


def no_temp_files(root: Path) -> bool:
    return not [p for p in root.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".hashkit-write-test")]


def full_disk_after(monkeypatch, predicate):
    """Make atomic writes whose target matches ``predicate`` fail with ENOSPC after writing half their bytes."""
    import hashkit.atomic_io as atomic_io

    original = atomic_io._write_all

    def write_all(fh, data, target):
        if predicate(target):
            fh.write(data[: len(data) // 2])
            fh.flush()
            raise OSError(errno.ENOSPC, "No space left on device")
        original(fh, data, target)

    monkeypatch.setattr(atomic_io, "_write_all", write_all)


@pytest.mark.parametrize("make_out, expected", [
    (lambda tmp: (tmp / "a-file").write_text("keep") and tmp / "a-file", "exists and is not a directory"),
    (lambda tmp: Path(os.devnull), "exists and is not a directory"),
    (lambda tmp: (tmp / "a-file").write_text("keep") and tmp / "a-file" / "run", "is not a directory"),
])
def test_train_refuses_a_bad_out_before_training(tmp_path, capsys, make_out, expected):
    recipe = recipe_file(tmp_path)
    out = make_out(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["train", str(recipe), "--out", str(out)]) == 2
    assert expected in one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if (tmp_path / "a-file").exists():
        assert (tmp_path / "a-file").read_text() == "keep"


def test_full_disk_at_start_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    full_disk_after(monkeypatch, lambda target: target.name == "recipe.toml")
    out = tmp_path / "run"
    assert main(["train", str(recipe_file(tmp_path)), "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert "No space left on device" in line and str(out / "recipe.toml") in line
    assert not out.exists() and no_temp_files(tmp_path)


def test_full_disk_at_a_checkpoint_keeps_the_run_resumable(tmp_path, capsys, monkeypatch):
    full_disk_after(monkeypatch, lambda target: target.name == "checkpoint.safetensors")
    out = tmp_path / "run"
    assert main(["train", str(recipe_file(tmp_path)), "--out", str(out)]) == 2
    assert "cannot write" in one_error_line(capsys)
    assert (out / "recipe.toml").is_file() and (out / "L8" / "metrics.jsonl").is_file()  # steps were logged
    assert not (out / "L8" / "checkpoint.safetensors").exists() and no_temp_files(tmp_path)


def test_a_failed_start_leaves_nothing_and_can_be_rerun(tmp_path, capsys):
    out = tmp_path / "run"
    missing = recipe_file(tmp_path, data={"dataset": {"name": "image_folder", "root": str(tmp_path / "nope")}})
    assert main(["train", str(missing), "--out", str(out)]) == 2
    assert str(tmp_path / "nope") in one_error_line(capsys)
    assert not out.exists()
    # a model that cannot be built fails after the run directory was written: the start is undone
    bad_loss = recipe_file(tmp_path, model={"backbone": {"name": "tiny_cnn", "width": 4},
                                            "aggregation": {"name": "gap"}, "hash_head": {"name": "linear"}})
    assert main(["train", str(bad_loss), "--out", str(out)]) == 2
    assert "needs 'class_logits'" in one_error_line(capsys)
    assert not out.exists()
    out.mkdir()  # an empty directory given by the user stays, empty
    assert main(["train", str(bad_loss), "--out", str(out)]) == 2
    assert out.is_dir() and not any(out.iterdir())


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_files_honour_the_umask(tmp_path, mask, mode):
    import numpy as np

    from hashkit.atomic_io import atomic_write_text
    from hashkit.codes.code_file import save_code_file

    old = os.umask(mask)
    try:
        atomic_write_text(tmp_path / "report.json", "{}")
        save_code_file(tmp_path / "codes.safetensors", np.zeros((2, 1), np.uint8), 8)
        expected_plain = tmp_path / "plain"
        expected_plain.write_text("x")  # what a plain open gives
    finally:
        os.umask(old)
    for name in ("report.json", "codes.safetensors", "plain"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


def test_encode_checks_its_output_before_encoding(tiny_run, tmp_path, capsys, monkeypatch):
    import hashkit.codes.encoder as encoder
    import hashkit.runs as runs

    images = tmp_path / "images"
    images.mkdir()
    from PIL import Image

    Image.new("RGB", (20, 20), (10, 20, 30)).save(images / "a.png")
    (tmp_path / "a-file").write_text("keep")

    def must_not_run(*args, **kwargs):
        raise AssertionError("work started before the output was checked")

    monkeypatch.setattr(runs, "load_run", must_not_run)
    monkeypatch.setattr(encoder, "encode_images", must_not_run)
    for out, expected in ((tmp_path, "is a directory"), (tmp_path / "a-file" / "c.safetensors", "is not a directory"),
                          (tmp_path / "a-file", "exists; pass --overwrite"), (Path(os.devnull), "not a regular file")):
        assert main(["encode", str(tiny_run), "--images", str(images), "--out", str(out), "--no-progress"]) == 2
        assert expected in one_error_line(capsys)
    assert (tmp_path / "a-file").read_text() == "keep"


def test_encode_full_disk_is_one_line_without_a_partial_file(tiny_run, tmp_path, capsys, monkeypatch):
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        Image.new("RGB", (20, 20), (i * 40, 20, 30)).save(images / f"{i}.png")
    out = tmp_path / "codes.safetensors"
    full_disk_after(monkeypatch, lambda target: target == out)
    assert main(["encode", str(tiny_run), "--images", str(images), "--out", str(out), "--no-progress"]) == 2
    assert "No space left on device" in one_error_line(capsys)
    assert not out.exists() and no_temp_files(tmp_path)
    monkeypatch.undo()
    # the finished chunks were kept: the rerun only writes the file
    assert main(["encode", str(tiny_run), "--images", str(images), "--out", str(out), "--no-progress"]) == 0
    assert "resuming: 3 of 3 images" in capsys.readouterr().err


def test_plot_and_gallery_folders_are_checked_before_work(tmp_path, capsys, monkeypatch):
    import hashkit.cli.commands.eval as eval_command
    import hashkit.gallery.html_report as html_report

    def must_not_run(*args, **kwargs):
        raise AssertionError("work started before the output folder was checked")

    monkeypatch.setattr(eval_command, "evaluate_run", must_not_run)
    monkeypatch.setattr(eval_command, "plot_overrides", must_not_run)
    monkeypatch.setattr(html_report, "write_run_report", must_not_run)
    (tmp_path / "a-file").write_text("keep")
    assert main(["eval", str(tmp_path), "--plots", str(tmp_path / "a-file")]) == 2
    assert "--plots " + str(tmp_path / "a-file") + " exists and is not a directory" in one_error_line(capsys)
    assert main(["gallery", str(tmp_path), "--out", str(tmp_path / "a-file" / "report")]) == 2
    assert "is not a directory" in one_error_line(capsys)
    assert (tmp_path / "a-file").read_text() == "keep" and no_temp_files(tmp_path)


MOUNT_SCRIPT = textwrap.dedent("""
    set -e
    mount -t tmpfs -o size=1m tmpfs "$RO" && mount -o remount,ro "$RO"
    mount -t tmpfs -o size=16k tmpfs "$FULL"
    exec "$PYTHON" "$SCRIPT"
""")
INNER = textwrap.dedent("""
    import json, os
    from hashkit.cli.main import main
    ro, full, recipe, run, images = (os.environ[k] for k in ("RO", "FULL", "RECIPE", "RUN", "IMAGES"))
    results = {
        "train_ro": main(["train", recipe, "--out", ro + "/run"]),
        "encode_ro": main(["encode", run, "--images", images, "--out", ro + "/c.safetensors", "--no-progress"]),
        "train_full": main(["train", recipe, "--out", full + "/run"]),
        "left_in_full": sorted(os.listdir(full)),
    }
    print("RESULTS" + json.dumps(results))
""")


def test_real_read_only_and_full_mounts(tiny_run, tmp_path):
    """Read-only and full tmpfs mounts inside a user namespace (skipped where mounting is not allowed)."""
    if not shutil.which("unshare"):
        pytest.skip("unshare is not available")
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("user namespaces with mounts are not allowed here")
    (tmp_path / "ro").mkdir(), (tmp_path / "full").mkdir()
    images = tmp_path / "images"
    images.mkdir()
    from PIL import Image

    Image.new("RGB", (20, 20)).save(images / "a.png")
    script = tmp_path / "inner.py"
    script.write_text(INNER)
    env = {**th.subprocess_env(), "RO": str(tmp_path / "ro"), "FULL": str(tmp_path / "full"),
           "RECIPE": str(recipe_file(tmp_path, protocol={"name": "pointwise", "epochs": 1})), "RUN": str(tiny_run),
           "IMAGES": str(images), "PYTHON": sys.executable, "SCRIPT": str(script)}
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", MOUNT_SCRIPT],
                          capture_output=True, text=True, env=env, timeout=600)
    if "mount:" in proc.stderr and "RESULTS" not in proc.stdout:
        pytest.skip(f"tmpfs cannot be mounted here: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.split("RESULTS", 1)[1])
    assert results["train_ro"] == 2 and results["encode_ro"] == 2 and results["train_full"] == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("hashkit: error:")]
    assert len(errors) == 3 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "Read-only file system" in errors[0] and "Read-only file system" in errors[1]
    assert "No space left on device" in errors[2]


def test_pictures_are_written_atomically(tmp_path, capsys, monkeypatch):
    """PNG outputs (data images, galleries, attention maps) go through atomic_write_png: read back pixel for
    pixel; a full disk keeps the previous file, leaves no temp file and is one error line in the CLI."""
    import numpy as np
    from PIL import Image

    from hashkit.atomic_io import atomic_write_png
    from hashkit.errors import OutputError

    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    target = tmp_path / "picture.png"
    atomic_write_png(target, Image.fromarray(pixels))
    assert (np.asarray(Image.open(target)) == pixels).all()

    full_disk_after(monkeypatch, lambda path: path.name == "picture.png")
    with pytest.raises(OutputError, match="picture.png"):
        atomic_write_png(target, Image.fromarray(255 - pixels))
    assert (np.asarray(Image.open(target)) == pixels).all() and no_temp_files(tmp_path)

    out = tmp_path / "photos"
    full_disk_after(monkeypatch, lambda path: path.parent.parent == out and len(list(out.rglob("*.png"))) >= 2)
    assert main(["data", "images", "demo", "--split", "query", "--per-class", "1", "--out", str(out)]) == 2
    assert "No space left" in one_error_line(capsys)
    written = sorted(out.rglob("*.png"))
    assert len(written) == 2 and no_temp_files(out)
    for path in written:  # complete files only: each one decodes to its full size
        with Image.open(path) as picture:
            picture.load()
            assert picture.size[0] > 0
