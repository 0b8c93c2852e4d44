"""``hashkit eval``: every computed metric reaches the table, and ``--plots`` makes the plots it can."""

from __future__ import annotations

import json

from PIL import Image

from hashkit.cli.main import main


def test_every_computed_metric_is_in_the_table(tiny_run, capsys):
    assert main(["eval", str(tiny_run), "--set", "eval.topk=[0,100]", "--json"]) == 0
    value = json.loads(capsys.readouterr().out)["results"]["8"]["last"]["encoded"]["map@100"]
    assert main(["eval", str(tiny_run), "--set", "eval.topk=[0,100]"]) == 0
    header, _, row = capsys.readouterr().out.splitlines()[1:4]
    assert "encoded map@100" in header  # right-aligned columns: the value sits under the end of its name
    end = header.index("encoded map@100") + len("encoded map@100")
    assert row[:end].split()[-1] == f"{value:.4f}"


def test_plots_are_made_without_asking_the_recipe(tiny_run, tmp_path, capsys):
    plots = tmp_path / "plots"
    assert main(["eval", str(tiny_run), "--plots", str(plots)]) == 0  # the recipe only asks for "map"
    out = capsys.readouterr().out
    assert sorted(p.name for p in plots.iterdir()) == ["pr_encoded.png", "precision_at_k_encoded.png"]
    for png in plots.iterdir():
        with Image.open(png) as im:
            assert im.size[0] > 100 and im.size[1] > 100
    assert "encoded precision@10" in out and "encoded pr_curve" not in out
