"""``hashkit bench``: resume after killing a bench mid-cell, two shards into one folder, the report files, and
bench-file errors. A tiny bench: 2 methods (pointwise, ADSH) x 1 dataset (demo, 8 seen + 2 unseen classes)
x 1 seed x 2 code lengths = 4 cells of a few optimiser steps each."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import training_helpers as th
from hashkit.bench import cell_dir, load_bench, run_bench, write_report
from hashkit.bench.runner import shard_cells
from hashkit.errors import CheckpointError
from hashkit.recipe.toml_writer import dumps_toml

DATA = {"dataset": {"name": "demo", "train_per_class": 3, "query_per_class": 2, "seen_fraction": 0.8},
        "batch_size": 8}
BENCH = """
name = "tiny"
code_lengths = [8, 12]
seeds = [0]
precision_at = [1, 5, 20]

[[methods]]
recipe = "point"
label = "Pointwise CE"

[[methods]]
recipe = "adsh.toml"
label = "ADSH"

[[datasets]]
name = "demo"
"""
PUBLISHED = [{"source": "a made-up paper, Table 1", "protocol": "seen@seen", "dataset": "demo", "seen_fraction": 0.8,
              "values": {"8": 50.0}, "scale": 100.0}]


def write_bench(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    point = th.tiny_recipe(data=DATA, protocol={"name": "pointwise", "epochs": 1})
    point["provenance"] = {"published": PUBLISHED}
    adsh = th.adsh_recipe(data=DATA, protocol={"name": "adsh", "rounds": 2, "epochs": 1, "num_samples": 16,
                                               "gamma": 200.0},
                          train={"progress": False, "checkpoint_every": 1})
    (directory / "point.toml").write_text(dumps_toml(point))
    (directory / "adsh.toml").write_text(dumps_toml(adsh))
    (directory / "bench.toml").write_text(BENCH)
    return directory / "bench.toml"


def tables(out: Path) -> list:
    write_report(out, out / "report", plots_enabled=False)
    return json.loads((out / "report" / "report.json").read_text())["tables"]


def digest_tree(directory: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(directory)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted bench, run once in this process, with its full report."""
    base = tmp_path_factory.mktemp("bench")
    bench = load_bench(write_bench(base / "files"))
    out = base / "uninterrupted"
    log = io.StringIO()
    progress = run_bench(bench, out, log=log)
    assert len(progress.ran) == 4 and "[4/4 done]" in log.getvalue() and "ETA" in log.getvalue()
    report = write_report(out)
    return bench, out, report


def _bench_process(bench_file: Path, out: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hashkit.cli.main", "bench", str(bench_file), "--out", str(out),
                             *args], env=th.subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_two_shards_kill_mid_cell_resume_equals_uninterrupted(reference, tmp_path):
    """Shard 1/2 in a subprocess and shard 2/2 in this process write one folder at the same time; the
    subprocess is killed (SIGKILL) inside its second cell; a plain rerun skips the finished cells, resumes the
    interrupted one from its checkpoint, and the tables equal the uninterrupted run's."""
    bench, ref_out, _ = reference
    cells = bench.cells()
    out = tmp_path / "sharded"
    assert [c.index for c in shard_cells(bench, (1, 2))] == [0, 2]
    target = cells[2]  # ADSH, 8 bits: the subprocess's second cell
    proc = _bench_process(bench.path, out, "--shard", "1/2")
    try:
        progress = run_bench(bench, out, shard=(2, 2), log=io.StringIO())
        assert progress.ran == [cells[1].key, cells[3].key]
        deadline = time.time() + 300
        while not (cell_dir.run_dir(out, target) / "L8" / "checkpoint.json").exists():
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")[-3000:]
            assert time.time() < deadline, "timed out waiting for the cell's first checkpoint"
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert [cell_dir.state(out, c) for c in cells] == ["done", "done", "interrupted", "done"]
    finished = {c.key: digest_tree(cell_dir.cell_dir(out, c)) for c in cells if c is not target}

    # while another process holds the interrupted cell, a run skips it
    with cell_dir.CellLock(cell_dir.cell_dir(out, target)) as locked:
        assert locked
        progress = run_bench(bench, out, log=io.StringIO())
    assert progress.skipped_locked == [target.key] and progress.ran == []
    # then the interrupted cell resumes from its checkpoint; nothing else reruns or changes
    log = io.StringIO()
    progress = run_bench(bench, out, log=log)
    assert progress.ran == [target.key] and "resumed" in log.getvalue() and "[4/4 done]" in log.getvalue()
    assert {c.key: digest_tree(cell_dir.cell_dir(out, c)) for c in cells if c is not target} == finished
    assert tables(out) == tables(ref_out)


def test_report_files_parse(reference):
    bench, out, report = reference
    names = {p.name for p in report.files}
    assert {"report.md", "report.csv", "report.tex", "report.json"} <= names
    assert "map_vs_bits_demo_unseen-at-all.png" in names and "pr_demo_seen-at-seen_L12.png" in names
    assert "precision_at_k_demo_seen-at-all_L12.png" in names
    rows = list(csv.DictReader((report.directory / "report.csv").open()))
    assert len(rows) == 4 * 2 * 2  # protocols x methods x code lengths
    data = json.loads((report.directory / "report.json").read_text())
    assert [t["protocol"] for t in data["tables"]] == ["seen@seen", "seen@all", "unseen@unseen", "unseen@all"]
    # each number is the cell's number (one seed: the mean is the value), with its database kind
    cells = {(c["method"], c["code_length"]): c for c in cell_dir.finished_cells(out)}
    for table in data["tables"]:
        for row in table["rows"]:
            assert row["database"] == {"ADSH": "learned", "Pointwise CE": "encoded"}[row["method"]]
            for bits, value in row["values"].items():
                cell = cells[(row["method"], int(bits))]
                assert value["mean"] == cell["results"]["selected"][table["protocol"]][row["database"]]["map"]
                assert value["std"] is None and value["seeds"] == 1
        for bits in table["code_lengths"]:  # exactly the best mean of each column is marked
            means = {r["method"]: r["values"][str(bits)]["mean"] for r in table["rows"]}
            marked = {r["method"] for r in table["rows"] if r["values"][str(bits)]["best"]}
            assert marked == {m for m, v in means.items() if v == max(means.values())}
    # the recipe's published number sits beside the measured one, with the difference
    seen = data["tables"][0]["rows"][0]
    assert seen["method"] == "Pointwise CE"
    assert seen["values"]["8"]["published"] == 0.5
    assert seen["values"]["8"]["difference"] == pytest.approx(seen["values"]["8"]["mean"] - 0.5, abs=1e-15)
    assert seen["values"]["12"]["published"] is None
    published_rows = [r for r in rows if r["published"]]
    assert len(published_rows) == 1 and published_rows[0]["published_source"] == "a made-up paper, Table 1"
    markdown = (report.directory / "report.md").read_text()
    assert "| ↳ published | | 50.0 | – |" in markdown and "**" in markdown
    tex = (report.directory / "report.tex").read_text()
    assert tex.count(r"\begin{tabular}") == 4 and r"\toprule" in tex and r"\bottomrule" in tex


def test_latex_compiles(reference, tmp_path):
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed")
    found = subprocess.run(["kpsewhich", "booktabs.sty"], capture_output=True, text=True) \
        if shutil.which("kpsewhich") else None
    if found is None or not found.stdout.strip():
        pytest.skip("the LaTeX package booktabs is not installed")
    _, _, report = reference
    shutil.copy(report.directory / "report.tex", tmp_path / "report.tex")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "report.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    assert (tmp_path / "report.pdf").stat().st_size > 0


def test_changed_settings_are_refused(reference, tmp_path):
    bench, ref_out, _ = reference
    out = tmp_path / "copy"
    shutil.copytree(ref_out, out)
    text = bench.path.read_text()
    changed = bench.path.parent / "changed.toml"
    changed.write_text(text.replace('seeds = [0]', 'seeds = [0]\nset = ["optimizer.lr=0.2"]'))
    with pytest.raises(CheckpointError, match="was run with other settings .*recipe_digest"):
        run_bench(load_bench(changed), out, log=io.StringIO())
    # a runtime-only key (device, progress bars, workers) changes nothing: every cell stays done
    runtime = bench.path.parent / "runtime.toml"
    runtime.write_text(text.replace('seeds = [0]', 'seeds = [0]\nset = ["train.device=\\"cpu\\"", "data.num_workers=0"]'))
    assert run_bench(load_bench(runtime), out, log=io.StringIO()).ran == []


@pytest.mark.parametrize("text, message", [
    ('code_lengths = [8]\n[[methods]]\nrecipe = "point"\n[[datasets]]\nname = "demo"\nseed = [1]\n',
     "datasets\\[0\\].seed: unknown key; expected one of: name, dataset, set"),
    ('code_lengths = [8]\n[[methods]]\nrecipe = "nope"\n[[datasets]]\nname = "demo"\n', "recipe 'nope' not found"),
    ('code_lengths = []\n[[methods]]\nrecipe = "point"\n[[datasets]]\nname = "demo"\n', "must not be empty"),
    ('code_lengths = [8]\n[[methods]]\nrecipe = "point"\n[[methods]]\nrecipe = "point"\n[[datasets]]\nname = "d"\n',
     "distinct labels"),
    ('code_lengths = [8]\n[[methods]]\nrecipe = "point"\nset = ["optimizer.lrr=1"]\n[[datasets]]\nname = "demo"\n',
     "optimizer.lrr: unknown key; closest: 'lr'"),
])
def test_bench_file_errors_are_one_line(reference, tmp_path, text, message, capsys):
    from hashkit.cli.main import main

    bench, _, _ = reference
    path = bench.path.parent / f"bad-{hashlib.sha256(text.encode()).hexdigest()[:8]}.toml"
    path.write_text(text)
    assert main(["bench", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hashkit: error:")
    assert re.search(message, err), err


def test_cli_list_and_bad_shard(reference, capsys):
    from hashkit.cli.main import main

    bench, out, _ = reference
    assert main(["bench", str(bench.path), "--out", str(out), "--shard", "2/2", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"done         {c.key}" for c in shard_cells(bench, (2, 2))]
    assert main(["bench", str(bench.path), "--out", str(out), "--shard", "3/2"]) == 2
    assert "bad --shard '3/2'" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="no bench.json"):
        write_report(out / "cells")


@pytest.mark.parametrize("name", ["demo", "semicon", "semicon-openset", "dsh-openset"])
def test_shipped_bench_files_validate(name):
    """Every cell of the bench files in benchmarks/ has a valid recipe with its overrides (nothing is built)."""
    from hashkit.bench.runner import prepare

    bench = load_bench(Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.toml")
    for cell in bench.cells():
        assert prepare(bench, cell).recipe.code_lengths


def test_open_set_recipes_carry_the_studys_numbers():
    """Spot checks of recipes/semicon-openset-*.toml against the DSH_Analysis README (5 % split) and logs."""
    from hashkit.recipe import load_recipe
    from hashkit.recipe.schema import Published
    from hashkit.recipe.coerce import build_config

    def published(dataset, fraction, protocol):
        entries = [build_config(Published, e) for e in
                   load_recipe(f"semicon-openset-{dataset}").provenance["published"]]
        (entry,) = [e for e in entries if e.seen_fraction == fraction and e.protocol == protocol]
        return entry.values

    assert published("cub200", 0.95, "seen@seen") == {"12": 37.7, "24": 66.8, "32": 74.4, "48": 80.8}
    assert published("cub200", 0.95, "unseen@all") == {"12": 8.4, "24": 11.0, "32": 15.9, "48": 18.9}
    assert published("vegfru", 0.95, "unseen@all")["48"] == 14.6  # the log value; the README repeats 14.2
    assert published("nabirds", 0.75, "seen@all") == {"12": 10.3, "24": 26.2, "32": 39.2, "48": 47.1}
    recipe = load_recipe("semicon-openset-food101")
    assert recipe.dataset.config.seen_fraction == 0.95 and recipe.train.selection == "best_query"
    assert recipe.eval.drop_last_item and recipe.protocol.config.rounds == 40


def test_fgnets_recipes_carry_the_studys_numbers():
    """Spot checks of the FISH, CHN, DPAH and DCDH per-dataset recipes' published entries (DSH_Analysis README,
    5 % split): the right values under the right protocol and database kind."""
    from hashkit.recipe import load_recipe
    from hashkit.recipe.coerce import build_config
    from hashkit.recipe.schema import Published

    def published(recipe, protocol):
        entries = [build_config(Published, e) for e in load_recipe(recipe).provenance["published"]]
        assert {e.protocol for e in entries} == {"seen@seen", "seen@all", "unseen@unseen", "unseen@all"}
        (entry,) = [e for e in entries if e.protocol == protocol]
        assert entry.seen_fraction == 0.95 and entry.selection == "best_query"
        return entry.database, entry.dataset, entry.values

    assert published("fish-cub200", "unseen@all") == ("label", "cub200", {"12": 2.0, "24": 1.8, "32": 2.1, "48": 3.7})
    assert published("chn-nabirds", "seen@seen") == ("label", "nabirds", {"12": 62.6, "24": 76.5, "32": 77.8,
                                                                          "48": 78.3})
    assert published("dcdh-aircraft", "unseen@unseen") == ("encoded", "aircraft", {"12": 47.8, "24": 59.5,
                                                                                    "32": 62.6, "48": 55.9})
    assert published("dpah-food101", "seen@all") == ("encoded", "food101", {"12": 49.7, "24": 60.4, "32": 62.3,
                                                                             "48": 65.1})


def test_a_failing_cell_does_not_stop_the_bench(reference, tmp_path, capsys):
    from hashkit.cli.main import main

    bench, _, _ = reference
    path = bench.path.parent / "failing.toml"
    path.write_text('code_lengths = [8]\n[[methods]]\nrecipe = "point"\n'
                    '[[datasets]]\nname = "missing"\ndataset = { name = "list_file", root = "/nonexistent/lists" }\n'
                    '[[datasets]]\nname = "demo"\n')
    assert main(["bench", str(path), "--out", str(tmp_path / "o")]) == 2
    captured = capsys.readouterr()
    assert "point on missing, seed 0, 8 bits: FAILED" in captured.err and "root directory not found" in captured.err
    assert "ran 1 cells" in captured.out and "1 FAILED (rerun to retry)" in captured.out
    cells = load_bench(path).cells()
    # the missing root is found before the run directory holds anything: the failed cell is still new
    assert [cell_dir.state(tmp_path / "o", c) for c in cells] == ["new", "done"]


def test_plot_styles_tell_many_methods_apart():
    """The colour cycle has ten colours; the marker changes with every ten methods, so 60 methods look distinct."""
    from hashkit.bench.plots import _style

    styles = [(s["color"], s["marker"]) for s in map(_style, range(60))]
    assert len(set(styles)) == 60
    assert styles[0] != styles[10] and styles[0][0] == styles[10][0]
