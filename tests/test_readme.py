"""The README is executed: its Python example runs as written, its shell commands exist with the options they
use, and the demo figures it quotes agree with docs/methods/semicon.md (and the untrained ones with what
``hashkit baseline`` computes)."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def code_blocks(text: str, language: str) -> list[str]:
    return [body for lang, body in re.findall(r"^ *```(\w*)\n(.*?)^ *```", text, re.S | re.M) if lang == language]


def shell_commands(block: str) -> list[list[str]]:
    """The simple commands of a shell block: continuation lines joined, comments dropped, split on && ; |."""
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        tokens = shlex.split(line, comments=True)
        current: list[str] = []
        for token in tokens + ["&&"]:
            if token in ("&&", ";", "|", "||"):
                if current:
                    commands.append(current)
                current = []
            else:
                current.append(token)
    return commands


def _example_files(root: Path) -> None:
    (root / "photos").mkdir()
    Image.new("RGB", (48, 40), (120, 80, 40)).save(root / "photos" / "bird.jpg")


def test_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    blocks = code_blocks(README, "python")
    assert blocks, "the README has no Python example"
    monkeypatch.chdir(tmp_path)
    _example_files(tmp_path)  # the files the README's commands and examples name
    for block in blocks:
        namespace: dict = {"__name__": "__readme__"}
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the documented example itself
    assert tuple(namespace["codes"].shape) == (1, 32)
    assert set(namespace["codes"].unique().tolist()) <= {-1.0, 1.0}


def _check_pip(args: list[str]) -> None:
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    assert args[0] == "install", args
    ranges = {Requirement(r).name: Requirement(r).specifier for r in PYPROJECT["project"]["dependencies"]}
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    it = iter(args[1:])
    for arg in it:
        if arg in ("-e", "--editable"):
            arg = next(it)
        if arg == "--index-url":
            assert next(it).startswith("https://download.pytorch.org/whl/")
        elif arg.startswith("."):
            wanted = re.fullmatch(r"\.(?:\[([\w,]+)\])?", arg)
            assert wanted, arg
            assert set(filter(None, (wanted.group(1) or "").split(","))) <= extras, arg
        elif not arg.startswith("-"):
            req = Requirement(arg)
            pinned = next(iter(req.specifier)).version
            assert req.name in ranges and pinned in SpecifierSet(str(ranges[req.name])), arg


def test_readme_shell_commands_exist_with_their_options():
    import importlib.util

    from hashkit.cli.main import build_parser

    parser = build_parser()
    checked = 0
    for block in code_blocks(README, "bash"):
        for command in shell_commands(block):
            program, args = Path(command[0]).name, command[1:]
            if program == "hashkit":
                try:
                    parsed = parser.parse_args(args)
                except SystemExit:
                    pytest.fail(f"README command does not parse: {' '.join(command)}")
                assert getattr(parsed, "func", None), command
                for arg in args:  # files the command names in the repository exist
                    if arg.startswith("recipes/"):
                        assert (REPO / arg).is_file(), arg
            elif program == "pip":
                _check_pip(args)
            elif program in ("python3", "python") and args[:2] == ["-m", "venv"]:
                pass
            elif program in ("python3", "python") and args[:1] == ["-m"]:
                assert importlib.util.find_spec(args[1]) is not None, command
            else:
                pytest.fail(f"README shell command not checked by this test: {' '.join(command)}")
            checked += 1
    assert checked >= 12


def test_training_doc_python_example_runs(tmp_path, monkeypatch, capsys):
    text = (REPO / "docs" / "training.md").read_text()
    section = text.split("## Training a model composed in Python", 1)[1]
    block = code_blocks(section, "python")[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "docs/training.md", "exec"), {"__name__": "__doc__"})  # noqa: S102
    printed = capsys.readouterr().out
    assert re.fullmatch(r"mAP 0\.\d{3}\n", printed), printed


def _demo_rows(text: str) -> dict[int, list[float]]:
    """``{bits: [learned mAP, learned tie-aware, encoded mAP, encoded tie-aware]}`` of a demo table."""
    return {int(m.group(1)): [float(x) for x in m.group(2).split()]
            for m in re.finditer(r"^ *(12|24)((?: +0\.\d{4}){4}) *$", text, re.M)}


def test_demo_figures_are_one_source_of_truth():
    semicon = (REPO / "docs" / "methods" / "semicon.md").read_text().split("## Demo", 1)[1]
    readme_rows = _demo_rows(README)
    assert set(readme_rows) == {12, 24}
    assert _demo_rows(semicon) == readme_rows  # the same table in both places
    for doc in ("README.md", "docs/training.md", "docs/methods/semicon.md"):
        assert "untrained_baseline" not in (REPO / doc).read_text(), doc


@pytest.mark.slow
def test_demo_untrained_figures_are_what_baseline_computes():
    from hashkit.training.baseline import baseline

    semicon = (REPO / "docs" / "methods" / "semicon.md").read_text().split("## Demo", 1)[1]
    quoted = re.search(r"^\| 12 \| (0\.\d{3}) / (0\.\d{3}) \|", semicon, re.M)
    assert quoted, "docs/methods/semicon.md quotes no untrained 12-bit figures"
    scores = baseline("semicon-demo", code_lengths=[12], overrides=["train.progress=false"])["results"]["12"]["last"]
    assert abs(scores["learned"]["map"] - float(quoted.group(1))) < 0.0011
    assert abs(scores["encoded"]["map"] - float(quoted.group(2))) < 0.0011
