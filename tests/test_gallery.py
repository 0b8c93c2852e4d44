"""``hashkit gallery``: retrieval grids, distance histograms, bit balance and the HTML report."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from hashkit.cli.main import main
from hashkit.gallery.grid import FRAMES, Cell, GridLayout, render_grid


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 9), st.integers(1, 20), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_distance_histograms_equal_pairwise_count(q, n, bits, classes, seed):
    from hashkit.evaluation.distance_histogram import distance_histograms

    g = torch.Generator().manual_seed(seed)
    query = torch.randint(0, 2, (q, bits), generator=g).float() * 2 - 1
    db = torch.randint(0, 2, (n, bits), generator=g).float() * 2 - 1
    ql = (torch.rand(q, classes, generator=g) < 0.4).float()
    dl = (torch.rand(n, classes, generator=g) < 0.4).float()
    same = np.zeros(bits + 1, dtype=np.int64)
    other = np.zeros(bits + 1, dtype=np.int64)
    for i in range(q):
        for j in range(n):
            d = sum(int(query[i, b] != db[j, b]) for b in range(bits))
            shared = any(ql[i, c] > 0 and dl[j, c] > 0 for c in range(classes))
            (same if shared else other)[d] += 1
    got_same, got_other = distance_histograms(query, db, ql, dl, block_elements=max(1, n))  # one query per block
    assert got_same.tolist() == same.tolist() and got_other.tolist() == other.tolist()


def test_bit_balance_and_spread_indices():
    from hashkit.evaluation.distance_histogram import bit_balance
    from hashkit.gallery.retrieval_gallery import spread_indices

    codes = torch.tensor([[1, 1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1]], dtype=torch.float32)
    assert bit_balance(codes).tolist() == [0.75, 0.75, 0.0]
    assert spread_indices(20, 3) == [0, 10, 19] and spread_indices(5, 9) == [0, 1, 2, 3, 4]
    assert spread_indices(7, 1) == [0] and spread_indices(0, 4) == []


def test_grid_layout_frames_and_size():
    red = Image.new("RGB", (5, 7), (255, 0, 0))
    rows = [[Cell(red, ("query", "a"), "query"), Cell(red, ("x",)), Cell(red, ("d=1", "b"), "relevant")],
            [Cell(red, ("query",), "query"), Cell(red), Cell(red, ("d=2",), "irrelevant")]]
    picture = render_grid(rows, 20, title="t", split_after=2)
    layout = GridLayout(2, 3, 20, split_after=2, title=True)
    assert picture.size == layout.size
    # frames are drawn where the layout says, in the colour of each cell's kind; pictures inside them
    assert picture.getpixel(layout.origin(0, 0)) == FRAMES["query"]
    assert picture.getpixel(layout.origin(0, 2)) == FRAMES["relevant"]
    assert picture.getpixel(layout.origin(1, 2)) == FRAMES["irrelevant"]
    x, y = layout.origin(1, 1)
    assert picture.getpixel((x + 14, y + 14)) == (255, 0, 0)
    # the block gap after split_after cells is wider than the gap between cells
    gap_in = layout.origin(0, 1)[0] - layout.origin(0, 0)[0]
    gap_block = layout.origin(0, 2)[0] - layout.origin(0, 1)[0]
    assert gap_block > gap_in == layout.box + 6
    with pytest.raises(ValueError):
        render_grid([])


def _expected_topk(query: torch.Tensor, db: torch.Tensor, k: int) -> tuple[list[int], list[int]]:
    """Literal ranking: d = (L - q.b) / 2, stable sort (ties by database index)."""
    d = ((query.shape[0] - db @ query) / 2).round().long().tolist()
    order = sorted(range(len(d)), key=lambda j: (d[j], j))[:k]
    return order, [d[j] for j in order]


@pytest.mark.slow
def test_gallery_cli_galleries_and_report(semicon_tiny_run, tmp_path, capsys):
    from hashkit.assemble import build_dataset
    from hashkit.data.transforms import build_transform
    from hashkit.gallery.retrieval_gallery import nearest
    from hashkit.gallery.run_codes import load_run_codes
    from hashkit.runs import load_run
    from hashkit.training.checkpoint import load_checkpoint

    run = semicon_tiny_run
    out = tmp_path / "gallery"
    assert main(["gallery", str(run), "--out", str(out), "--queries", "3", "-k", "4", "--cell", "24"]) == 0
    report = json.loads((run / "report.json").read_text())
    for bits in (12, 24):
        codes, _ = load_checkpoint(run / f"L{bits}" / "codes.safetensors")
        query, db = codes["last.query"], codes["last.database_encoded"]
        ql, dl = codes["last.query_labels"], codes["last.database_encoded_labels"]
        assert len(query) == 20
        picked = [0, 10, 19]  # 3 queries spread over the 20
        with Image.open(out / f"gallery_L{bits}.png") as im:
            picture = im.convert("RGB")
        layout = GridLayout(3, 1 + 3 + 4, 24, split_after=4, title=True)  # query, 3 SEM maps, top 4
        assert picture.size == layout.size
        for row, qi in enumerate(picked):
            assert picture.getpixel(layout.origin(row, 0)) == FRAMES["query"]
            order, _ = _expected_topk(query[qi], db, 4)
            for col, j in enumerate(order):
                relevant = bool((ql[qi] * dl[j]).sum() > 0)
                expected = FRAMES["relevant" if relevant else "irrelevant"]
                assert picture.getpixel(layout.origin(row, 4 + col)) == expected, (bits, row, col)
    page = (out / "report.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert {"gallery_L12.png", "gallery_L24.png", "training.png", "distances.png", "bit_balance.png",
            "pr_encoded.png", "pr_learned.png", "precision_at_k_encoded.png"} <= set(sources)
    assert all((out / s).is_file() for s in sources)
    for bits in ("12", "24"):  # the page's mAP is the trainer's, recomputed from the same codes
        for kind in ("encoded", "learned"):
            assert f"<td>{report['results'][bits]['last'][kind]['map']:.4f}</td>" in page
    assert "wrote" in capsys.readouterr().out

    # outside query images: encoded alone, grey frames, results ranked against the encoded database
    photo = tmp_path / "q.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(photo)
    out2 = tmp_path / "g2"
    assert main(["gallery", str(run), "--out", str(out2), "--query", str(photo), "-k", "3", "--cell", "24",
                 "--code-length", "12", "--no-report"]) == 0
    loaded = load_run(run, 12)
    with torch.no_grad():
        with Image.open(photo) as im:
            code = loaded.model.encode(build_transform(loaded.recipe.data.eval_transform)(im.convert("RGB"))[None])[0]
    codes, _ = load_checkpoint(run / "L12" / "codes.safetensors")
    layout = GridLayout(1, 1 + 3 + 3, 24, split_after=4, title=True)
    with Image.open(out2 / "gallery_L12.png") as im:
        picture = im.convert("RGB")
    assert picture.size == layout.size
    assert sorted(p.name for p in out2.iterdir()) == ["gallery_L12.png"]
    assert all(picture.getpixel(layout.origin(0, 4 + c)) == FRAMES["unknown"] for c in range(3))
    order, _ = _expected_topk(code, codes["last.database_encoded"], 3)
    run_codes = load_run_codes(loaded, build_dataset(loaded.recipe))
    assert nearest(run_codes, code[None], 3)[0][0].tolist() == order


@pytest.mark.parametrize("drop_last_item", [False, True])
def test_report_scores_through_the_registered_metric_components(drop_last_item, monkeypatch):
    """The page's figures come from the registered metric components, as ``[eval] metrics`` do: a component
    replaced in the registry is the one that runs, and the recipe's drop_last_item reaches it. Hand-made
    problem (4 bits): database at distances 0, 1, 2, 3 from the query, relevant at 0 and 3."""
    from types import SimpleNamespace

    import attrs

    from hashkit.gallery.html_report import score_kinds
    from hashkit.registry import get_registry

    metrics = get_registry()._entries["metric"]
    built = []

    def counting(cfg, ctx, factory=metrics["precision@k"].factory):
        built.append(cfg)
        return factory(cfg, ctx)

    monkeypatch.setitem(metrics, "precision@k", attrs.evolve(metrics["precision@k"], factory=counting))
    query = torch.ones(1, 4)
    database = torch.tensor([[1, 1, 1, 1], [-1, 1, 1, 1], [-1, -1, 1, 1], [-1, -1, -1, 1]], dtype=torch.float32)
    labels = torch.eye(2)
    codes = SimpleNamespace(query=query, query_labels=labels[[0]],
                            kinds={"encoded": (database, labels[[0, 1, 1, 0]])})
    recipe = SimpleNamespace(eval=SimpleNamespace(drop_last_item=drop_last_item))
    scores = score_kinds(codes, recipe)["encoded"]
    assert [(c.k, c.drop_last_item) for c in built] == [((1,), drop_last_item)]  # TOPK cut-offs that fit
    # relevant at ranks 1 and 4: AP = (1/1 + 2/4) / 2; the dropped last item leaves rank 1 alone
    assert scores["map"] == pytest.approx(1.0 if drop_last_item else 0.75)
    assert scores["precision@1"] == 1.0
    assert scores["precision@radius2"] == pytest.approx(1 / 3)  # ball {0, 1, 2}: one relevant of three
    assert len(scores["pr_curve"]["precision"]) == 5  # radii 0..4


def test_gallery_errors(tmp_path, capsys):
    assert main(["gallery", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert main(["gallery", str(tmp_path), "--out", str(tmp_path / "o"), "--query", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "no such query image" in err and err.count("\n") == 2
