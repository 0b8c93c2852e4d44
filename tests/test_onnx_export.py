"""``hashkit export --onnx``: the encoder graph reproduces the PyTorch codes with onnxruntime, for any batch size;
models that cannot be exported are refused with one line naming the component."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from hashkit.cli.main import main  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from training_helpers import tiny_recipe  # noqa: E402

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny trained run with SEM attention (running sigma: batch-independent codes) and its ONNX export."""
    from hashkit.training import train

    base = tmp_path_factory.mktemp("onnx")
    recipe = tiny_recipe(model={"tap": "stage3", "backbone": {"name": "tiny_cnn", "width": 16, "until": "stage3"},
                                "attention": [{"name": "sem", "sigma": "running", "sigma_eps": 1e-6}],
                                "aggregation": {"name": "gap"}, "hash_head": {"name": "linear", "classifier": True}},
                         protocol={"name": "pointwise", "epochs": 1})
    train(recipe, base / "run")
    path = base / "encoder.onnx"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["export", str(base / "run"), "--onnx", str(path), "--check", "12"]) == 0
    return base / "run", path, printed.getvalue()


def demo_query_images(loaded) -> torch.Tensor:
    from hashkit.assemble import build_dataset
    from hashkit.data.transforms import build_transform

    split = build_dataset(loaded.recipe).split("query")
    transform = build_transform(loaded.recipe.data.eval_transform)
    return torch.stack([transform(split.reader(item)) for item in split.items])


@pytest.mark.slow
def test_onnx_codes_equal_pytorch_for_any_batch(exported):
    import onnx
    import onnxruntime as ort

    from hashkit.runs import load_run

    run, path, printed = exported
    assert "on 12 images (batch sizes 1, 12)" in printed and "binary codes identical" in printed
    loaded = load_run(run)
    assert int(loaded.model.attention[0].num_sigma_updates) > 0  # the running sigma is what gets exported
    images = demo_query_images(loaded)  # the 20 demo query images, as the run evaluated them
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["format"] == "hashkit.onnx_encoder" and meta["code_length"] == "8" and meta["crop"] == "16"
    assert json.loads(meta["mean"]) == list(loaded.recipe.data.eval_transform.mean)
    assert meta["batch_dependent"] == "false"
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # a symbolic (dynamic) batch size
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        relaxed = loaded.model(images).codes
        binary = loaded.model.encode(images)
    for size in (1, 7, 20):
        for start in range(0, len(images), size):
            codes, soft = session.run(["codes", "relaxed"], {"images": images[start:start + size].numpy()})
            assert codes.shape == (len(images[start:start + size]), 8)
            assert np.abs(soft - relaxed[start:start + size].numpy()).max() <= 1e-4
            assert np.array_equal(codes, binary[start:start + size].numpy())


@pytest.mark.slow
def test_a_graph_that_differs_is_not_written(exported, monkeypatch, tmp_path):
    import onnx

    from hashkit.export import onnx_export
    from hashkit.runs import load_run

    run, path, _ = exported
    loaded = load_run(run)
    images = demo_query_images(loaded)[:6]
    data = path.read_bytes()
    assert onnx_export.check_onnx(data, loaded.model, images).ok
    with torch.no_grad():
        loaded.model.hash_head.hash[-1].bias.add_(0.5)  # a model the graph no longer matches
    result = onnx_export.check_onnx(data, loaded.model, images)
    assert not result.ok and result.max_relaxed_diff > 1e-4

    class Program:  # the exported graph, without exporting again
        model_proto = onnx.load(str(path))

    monkeypatch.setattr(onnx_export, "build_graph", lambda *a, **k: Program())
    target = tmp_path / "changed.onnx"
    with pytest.raises(onnx_export.ExportError, match="not written"):
        onnx_export.export_onnx(loaded.model, target, section=loaded.recipe.data.eval_transform, recipe_name="x",
                                check_images=images)
    assert not target.exists() and not list(tmp_path.iterdir())


def test_models_that_cannot_export_are_refused_by_name(tmp_path):
    from hashkit.assemble import build_model
    from hashkit.export.onnx_export import ExportError, export_onnx
    from hashkit.model.capabilities import batch_dependent_components, onnx_export_blockers
    from hashkit.recipe.load import load_recipe

    recipe = load_recipe(RECIPES / "mix-sem-knn-cauchy.toml")  # SEM (image sigma) + kNN-graph EdgeConv
    model = build_model(recipe, 16)
    assert onnx_export_blockers(model) == [
        "aggregation 'knn_graph': its kNN graph search (torch.cdist + sort) has no ONNX conversion in torch.onnx "
        "(aten::_cdist_forward)"]
    assert batch_dependent_components(model) == []
    with pytest.raises(ExportError, match=r"tiny_cnn -> sem -> knn_graph -> .*knn_graph': its kNN graph search"):
        export_onnx(model, tmp_path / "m.onnx", section=recipe.data.eval_transform, recipe_name=recipe.name,
                    check_images=None)
    assert not (tmp_path / "m.onnx").exists()
    dense = build_model(load_recipe(RECIPES / "fdhmfe-demo.toml", ["model.aggregation.layer=gcn"]), 12)
    knn = build_model(load_recipe(RECIPES / "fdhmfe-demo.toml", ["model.aggregation.graph=knn"]), 12)
    assert onnx_export_blockers(dense) == []  # PyG layers on dense graphs export
    assert [b.split(":")[0] for b in onnx_export_blockers(knn)] == ["aggregation.gnn 'MultilevelGNN'"]
    semicon = build_model(load_recipe(RECIPES / "semicon-demo.toml"), 12)
    assert batch_dependent_components(semicon) == ["attention[0] 'sem'"] and onnx_export_blockers(semicon) == []


def test_export_command_errors(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope"), "--onnx", str(tmp_path / "m.onnx")]) == 2
    assert main(["export", str(tmp_path), "--onnx", str(tmp_path / "m.onnx"), "--check", "-1"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("hashkit: error: ") for line in err)


def test_export_checks_its_output_before_loading_the_run(tmp_path, capsys, monkeypatch):
    """As encode (and train): an existing file is kept unless --overwrite, a bad --onnx fails before any work."""
    import hashkit.runs as runs

    monkeypatch.setattr(runs, "load_run", lambda *a, **k: pytest.fail("the run was loaded before --onnx was checked"))
    (tmp_path / "m.onnx").write_text("keep")
    for out, expected in ((tmp_path / "m.onnx", "exists; pass --overwrite"), (tmp_path, "is a directory"),
                          (tmp_path / "m.onnx" / "x.onnx", "is not a directory")):
        assert main(["export", str(tmp_path), "--onnx", str(out)]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and expected in err[0], err
    assert (tmp_path / "m.onnx").read_text() == "keep"
    from hashkit.errors import HashkitError

    loads = []

    def stop(*args, **kwargs):
        loads.append(args)
        raise HashkitError("stopped after the check")

    monkeypatch.setattr(runs, "load_run", stop)  # --overwrite passes the check: the export goes on
    assert main(["export", str(tmp_path), "--onnx", str(tmp_path / "m.onnx"), "--overwrite"]) == 2
    assert len(loads) == 1 and "stopped after the check" in capsys.readouterr().err
