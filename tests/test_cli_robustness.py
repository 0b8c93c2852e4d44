"""Command-line behaviour under hostile or unlucky conditions: a closed pipe, errors raised in DataLoader
workers, huge echoed input, and the help and output details a new user trips over."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import training_helpers as th
from hashkit.cli.main import MAX_ERROR_CHARS, main, one_line
from hashkit.errors import ContractError, DataError


class _ClosedPipe:
    """A stdout whose reader went away (no file descriptor, so nothing of the test process is touched)."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        pass


def test_a_closed_pipe_ends_quietly(monkeypatch, capsys):
    """``hashkit components | head -2``: the reader is gone; the command ends quietly, status 141."""
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert main(["components", "--json"]) == 141
    assert capsys.readouterr().err == ""


def test_a_closed_pipe_ends_quietly_in_a_real_process():
    """A real pipe closed before anything is written: block-buffered stdout (the usual case of a pipe) fails
    at the final flush (the in-process test above covers a failing print)."""
    env = {k: v for k, v in th.subprocess_env().items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.Popen([sys.executable, "-m", "hashkit.cli.main", "plugins"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # like `head` exiting before the first write
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err and "internal error" not in err, err


def test_an_error_in_a_dataloader_worker_is_one_line(tmp_path):
    from torch.utils.data import DataLoader

    from hashkit.data.image_dataset import ImageDataset
    from hashkit.data.readers import FileImageReader
    from hashkit.interfaces import Split

    (tmp_path / "bad.png").write_bytes(b"not an image")
    split = Split(items=["bad.png"], targets=torch.zeros(1, 1), reader=FileImageReader(tmp_path))
    with pytest.raises(DataError) as info:
        next(iter(DataLoader(ImageDataset(split), num_workers=1)))
    assert "Traceback" in str(info.value)  # what torch hands back from the worker ...
    line = one_line(info.value)
    assert "\n" not in line and "Traceback" not in line  # ... and what the user sees
    assert line == f"cannot read image {tmp_path / 'bad.png'}: cannot identify image file " \
                   f"{str(tmp_path / 'bad.png')!r} (in a data-loading worker)"


def test_echoed_input_is_cut(tmp_path, capsys):
    huge = "x" * 1_000_000
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'code_lengths = [8]\n[model.backbone]\nname = "{huge}"\n[model.aggregation]\nname = "gap"\n')
    assert main(["recipe", "validate", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert len(err) < 1000 and "1,000,002 characters" in err and "unknown backbone" in err
    assert main(["recipe", "validate", str(recipe), "--set", f"{huge}=1"]) == 2
    assert len(capsys.readouterr().err) < 400
    assert len(one_line(DataError("y" * 50_000))) < MAX_ERROR_CHARS + 60


def test_sem_on_a_single_position_says_what_helps():
    from hashkit.assemble import make_component
    from hashkit.interfaces import BuildContext, FeatureSpec

    sem = make_component("attention", "sem", {"sigma_eps": 1e-12}, BuildContext(in_spec=FeatureSpec(64, 8)))
    with pytest.raises(ContractError, match=r"1x1, a single position.*at least 16 px.*tap an earlier stage"):
        sem(torch.randn(2, 64, 1, 1))
    out = sem(torch.randn(2, 64, 2, 2))  # 2x2 is fine
    assert torch.isfinite(out.maps).all()
    flat = make_component("attention", "sem", {}, BuildContext(in_spec=FeatureSpec(64, 8)))
    for p in flat.heads.parameters():
        torch.nn.init.zeros_(p)  # every stage map constant: sigma = 0
    with pytest.raises(ContractError, match=r"set sigma_eps = 1e-12") as info:
        flat(torch.randn(2, 64, 3, 3))
    assert "sigma = \\\"image\\\"" not in str(info.value) and 'sigma = "image"' not in str(info.value)


def test_help_output_and_text_details(capsys):
    with pytest.raises(SystemExit):
        main(["data", "--help"])
    text = capsys.readouterr().out
    assert "``" not in text and "RECIPE_OR_DATASET is a recipe file" in text
    with pytest.raises(SystemExit):
        main(["data", "check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "with a DATASET name: set one of its options (--set root=" in text
    assert main(["recipe", "show", "semicon-demo", "--no-model"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n") and not out.endswith("\n\n")


def test_plugins_table_columns_fit_long_names(capsys):
    import types

    import hashkit
    from hashkit.plugin_loader import add_plugin, remove_plugin

    name = "a-plugin-with-a-really-quite-long-name-indeed"
    mod = types.ModuleType(name)
    mod.hashkit_register = hashkit.hookimpl(lambda register: None)
    add_plugin(mod, name)
    try:
        assert main(["plugins"]) == 0
    finally:
        remove_plugin(name)
    rows = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("    ")]
    starts = {line.index("built-in") if "built-in" in line else line.index("python") for line in rows}
    assert len(starts) == 1  # the origin column starts at the same place on every row
    assert any(line.startswith(name + "  ") for line in rows)


def test_train_has_device_and_no_progress(tmp_path, capsys):
    from hashkit.recipe.toml_writer import dumps_toml

    recipe = tmp_path / "r.toml"
    recipe.write_text(dumps_toml(th.tiny_recipe(protocol={"name": "pointwise", "epochs": 1},
                                                train={"progress": True})))
    assert main(["train", str(recipe), "--out", str(tmp_path / "run"), "--device", "cpu", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "epochs" not in err and "\r" not in err  # no bars
    import json

    resolved = json.loads((tmp_path / "run" / "recipe.resolved.json").read_text())
    assert resolved["train"]["device"] == "cpu" and resolved["train"]["progress"] is False
    assert os.environ.get("HASHKIT_MAX_IMAGE_PIXELS") is None
    # eval and baseline have --no-progress too; it wins over the recipe (and over --set)
    for command in (["eval", str(tmp_path / "run")], ["baseline", str(recipe)]):
        assert main([*command, "--set", "train.progress=true"]) == 0
        assert "batch" in capsys.readouterr().err  # the evaluation's bar ("... batch/s")
        assert main([*command, "--set", "train.progress=true", "--no-progress"]) == 0
        assert capsys.readouterr().err == ""


def test_a_bar_into_a_file_refreshes_only_at_start_and_end():
    import io

    from hashkit.progress import progress_bar, set_postfix

    log = io.StringIO()  # not a terminal
    with progress_bar(total=500, desc="steps", file=log) as bar:
        for i in range(500):
            bar.update(1)
            set_postfix(bar, loss=f"{i:.3f}")
    assert 1 <= log.getvalue().count("steps") <= 2, log.getvalue()


def test_training_into_a_log_does_not_render_every_step(tmp_path, capsys):
    from hashkit.training import train

    train(th.tiny_recipe(data={"batch_size": 2}, train={"progress": True}), tmp_path / "run")  # 40 steps
    err = capsys.readouterr().err
    assert "epochs" in err  # the bars are there ...
    assert err.count("\r") < 20, err.count("\r")  # ... but not one refresh per step
