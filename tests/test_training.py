"""The training engine: run directory, determinism, NaN stop, schedules, parameter groups, model selection,
AMP, load_run and the CLI."""

from __future__ import annotations

import json
import math
import tomllib

import pytest
import torch
from torch import nn

import training_helpers as th
from hashkit.errors import RecipeError, TrainingError
from hashkit.recipe.schema import OptimizerSection, ParamGroup, ScheduleSection
from hashkit.training import train
from hashkit.training.checkpoint import load_checkpoint


@pytest.fixture(autouse=True)
def _test_plugin():
    th.register_test_plugin()


def test_pointwise_run_writes_the_run_directory(tmp_path, capsys):
    run = tmp_path / "run"
    report = train(th.tiny_recipe(train={"progress": False, "log_every": 1}), run)
    for name in ("recipe.toml", "recipe.resolved.json", "environment.json", "report.json", "report.txt",
                 "L8/checkpoint.safetensors", "L8/checkpoint.json", "L8/metrics.jsonl", "L8/codes.safetensors"):
        assert (run / name).is_file(), name
    from hashkit.recipe import load_recipe

    saved = load_recipe(run / "recipe.toml")
    assert saved.model == load_recipe(th.tiny_recipe()).model and saved.code_lengths == (8,)
    env = json.loads((run / "environment.json").read_text())
    assert env["device"] == "cpu" and env["torch"] == torch.__version__ and env["world_size"] == 1
    events = [json.loads(line) for line in (run / "L8/metrics.jsonl").read_text().splitlines()]
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, 11))  # 40 images / 8 = 5 steps x 2 epochs
    assert all(math.isfinite(e["loss"]) and "cross_entropy" in e for e in steps)
    result = report["results"]["8"]
    assert result["selection"] == "last" and 0.0 < result["last"]["encoded"]["map"] <= 1.0
    assert result["last"]["encoded"]["num_queries"] == 20 and result["last"]["encoded"]["num_database"] == 40
    out = capsys.readouterr().out
    assert "encoded mAP" in out and f"{result['last']['encoded']['map']:.4f}" in out
    assert out.strip().endswith((run / "report.txt").read_text().strip().splitlines()[-1])


def test_a_code_length_trained_alone_equals_it_trained_after_another(tmp_path):
    recipe = th.tiny_recipe(code_lengths=[8, 12])
    train(recipe, tmp_path / "both")
    train(recipe, tmp_path / "alone", code_lengths=[12])
    a, b = th.final_state(tmp_path / "both", 12), th.final_state(tmp_path / "alone", 12)
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = th.final_state(tmp_path / "both", 8)
    assert not torch.equal(c["model.backbone.stages.stage1.0.0.weight"], a["model.backbone.stages.stage1.0.0.weight"])


def test_nan_loss_stops_with_step_parts_and_intact_checkpoint(tmp_path):
    recipe = th.tiny_recipe(losses=[{"name": "nan_after_test", "after": 5}],
                            model={"backbone": {"name": "tiny_cnn", "width": 4}, "aggregation": {"name": "gap"},
                                   "hash_head": {"name": "linear"}},
                            train={"progress": False, "checkpoint_every": 2})
    with pytest.raises(TrainingError) as info:
        train(recipe, tmp_path / "run")
    message = str(info.value)
    assert "step 6 " in message and "round 2, epoch 1, batch 1" in message
    assert "loss=nan" in message and "nan_after_test.square=" in message
    assert "last good checkpoint" in message
    tensors, meta = load_checkpoint(tmp_path / "run" / "L8" / "checkpoint.safetensors")
    assert meta["position"]["step"] == 5  # end of round 1 (checkpoint at steps 2, 4 and the round end)
    assert all(torch.isfinite(v).all() for k, v in tensors.items() if k.startswith("model.") and v.is_floating_point())


def test_nan_stop_via_cli_is_one_line_exit_2(tmp_path, capsys):
    from hashkit.cli.main import main

    recipe_file = tmp_path / "r.toml"
    from hashkit.recipe.toml_writer import dumps_toml

    recipe = th.tiny_recipe(losses=[{"name": "nan_after_test", "after": 0}],
                            model={"backbone": {"name": "tiny_cnn", "width": 4}, "aggregation": {"name": "gap"},
                                   "hash_head": {"name": "linear"}})
    recipe_file.write_text(dumps_toml(recipe))
    assert main(["train", str(recipe_file), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "non-finite loss at step 1" in err and "Traceback" not in err


# ----------------------------------------------------------------------------------------------- schedules
@pytest.mark.parametrize("section, expected", [
    (ScheduleSection(name="constant"), [1, 1, 1, 1, 1, 1]),
    (ScheduleSection(name="multistep", milestones=(2, 4), gamma=0.1), [1, 1, 0.1, 0.1, 0.01, 0.01]),
    (ScheduleSection(name="step", step_size=3, gamma=0.5), [1, 1, 1, 0.5, 0.5, 0.5]),
    (ScheduleSection(name="exponential", gamma=math.exp(-0.01)), [math.exp(-0.01 * t) for t in range(6)]),
    (ScheduleSection(name="multistep", milestones=(3,), warmup=2), [0.5, 1, 1, 0.1, 0.1, 0.1]),
    # cosine over 6 units to min_lr = 0: (1 + cos(pi t / 6)) / 2
    (ScheduleSection(name="cosine"), [1.0, 0.9330127, 0.75, 0.5, 0.25, 0.0669873]),
    # warmup 2 (0.5, 1), then cosine over the remaining 4 units down to min_lr / lr = 0.1:
    # 0.1 + 0.9 * (1 + cos(pi * k / 4)) / 2 for k = 0..3
    (ScheduleSection(name="cosine", warmup=2, min_lr=0.01),
     [0.5, 1.0, 1.0, 0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2, 0.55,
      0.1 + 0.9 * (1 + math.cos(3 * math.pi / 4)) / 2]),
])
def test_schedule_factors(section, expected):
    from hashkit.training.schedule import lr_factor

    got = [lr_factor(section, t, 6, base_lr=0.1) for t in range(6)]
    assert got == pytest.approx(expected, abs=1e-6)


def test_schedule_steps_per_round_in_a_run(tmp_path):
    recipe = th.tiny_recipe(protocol={"name": "pointwise", "epochs": 3}, train={"progress": False, "log_every": 1},
                            schedule={"name": "multistep", "unit": "epoch", "milestones": [1, 2], "gamma": 0.5})
    train(recipe, tmp_path / "run")
    events = [json.loads(line) for line in (tmp_path / "run/L8/metrics.jsonl").read_text().splitlines()]
    lrs = {e["round"]: e["lr"] for e in events if e["event"] == "step"}
    assert lrs == pytest.approx({0: 0.05, 1: 0.025, 2: 0.0125})


# ---------------------------------------------------------------------------------- parameter groups, freeze
class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(3, 3)
        self.head = nn.Linear(3, 2)


def test_param_groups_and_freeze():
    from hashkit.training.optim import build_optimizer, freeze

    net = _Net()
    assert freeze(net, ["backbone.bias"]) == ["backbone.bias"]
    section = OptimizerSection(lr=0.1, weight_decay=1e-4, param_groups=(ParamGroup(match="head", lr_mult=10.0,
                                                                                    weight_decay=0.0),))
    opt = build_optimizer(net.named_parameters(), section)
    groups = {g["name"]: g for g in opt.param_groups}
    assert [p is net.backbone.weight for p in groups["default"]["params"]] == [True]
    assert groups["head"]["lr"] == pytest.approx(1.0) and groups["head"]["weight_decay"] == 0.0
    assert len(groups["head"]["params"]) == 2
    with pytest.raises(RecipeError, match="no parameter name contains 'nothing'"):
        freeze(_Net(), ["nothing"])
    with pytest.raises(RecipeError, match="optimizer.param_groups"):
        build_optimizer(_Net().named_parameters(), OptimizerSection(param_groups=(ParamGroup(match="absent"),)))


def test_frozen_backbone_does_not_move(tmp_path):
    recipe = th.tiny_recipe(train={"progress": False, "freeze": ["backbone"]})
    train(recipe, tmp_path / "run")
    from hashkit.assemble import build
    from hashkit.training.seeding import derive_seed, seed_globals

    seed_globals(derive_seed(5, 8, "init"))
    initial = build(th.tiny_recipe(), 8).model.state_dict()
    final = th.final_state(tmp_path / "run", 8)
    assert torch.equal(final["model.backbone.stages.stage1.0.0.weight"], initial["backbone.stages.stage1.0.0.weight"])
    assert not torch.equal(final["model.hash_head.hash.0.weight"], initial["hash_head.hash.0.weight"])


# ----------------------------------------------------------------------------------------- model selection
def test_validation_split_is_per_class_disjoint_and_seeded():
    from hashkit.assemble import build_dataset
    from hashkit.recipe import load_recipe
    from hashkit.training.validation import carve_validation

    data = build_dataset(load_recipe(th.tiny_recipe(data={"dataset": {"name": "demo", "train_per_class": 10,
                                                                         "query_per_class": 2}})))
    reduced, val = carve_validation(data, 0.2, seed=1)
    assert len(val) == 20 and len(reduced.split("train")) == 80
    assert set(val.items).isdisjoint(reduced.split("train").items)
    assert torch.equal(val.targets.sum(0), torch.full((10,), 2.0))
    again, val2 = carve_validation(data, 0.2, seed=1)
    assert list(val2.items) == list(val.items)
    assert list(carve_validation(data, 0.2, seed=2)[1].items) != list(val.items)


@pytest.mark.parametrize("selection", ["best_val", "best_query"])
def test_selection_reports_last_beside_selected(tmp_path, selection):
    recipe = th.adsh_recipe(train={"progress": False, "selection": selection, "val_fraction": 0.25})
    report = train(recipe, tmp_path / "run")
    res = report["results"]["8"]
    assert res["selection"] == selection and 1 <= res["selected_round"] <= 3
    assert set(res["last"]) == set(res["selected"]) == {"learned", "encoded"}
    evals = [json.loads(line) for line in (tmp_path / "run/L8/metrics.jsonl").read_text().splitlines()
             if json.loads(line)["event"] == "eval"]
    assert [e["round"] for e in evals] == [0, 1, 2]
    assert {e["split"] for e in evals} == {"val" if selection == "best_val" else "query"}
    best = max(evals, key=lambda e: e["score"])
    assert res["selected_round"] == best["round"] + 1 and res["selection_score"] == best["score"]
    if selection == "best_query":  # the selected model's query mAP is the best one seen during training
        assert res["selected"]["learned"]["map"] == pytest.approx(best["score"])
        if res["selected_round"] == 3:
            assert res["selected"] == res["last"]
    if selection == "best_val":
        assert res["last"]["learned"]["num_database"] == 30  # 40 training items minus 10 validation items
    text = (tmp_path / "run" / "report.txt").read_text()
    assert "(last)" in text and ("test-selected" in text if selection == "best_query" else "best_val" in text)


# ------------------------------------------------------------------------------------------------ AMP, misc
def test_bf16_autocast_trains_with_float32_losses(tmp_path):
    report = train(th.adsh_recipe(train={"progress": False, "amp": "bf16", "channels_last": True,
                                         "grad_clip": 1.0, "log_every": 1}), tmp_path / "run")
    events = [json.loads(line) for line in (tmp_path / "run/L8/metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(e["loss"]) for e in events if e["event"] == "step")
    assert 0 <= report["results"]["8"]["last"]["learned"]["map"] <= 1


def test_load_run_gives_the_trained_model_in_eval_mode(tmp_path):
    from hashkit.runs import load_run
    from hashkit.training.evaluate import encode_split

    train(th.adsh_recipe(train={"progress": False}), tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    assert loaded.code_length == 8 and not loaded.model.training and loaded.which == "last"
    codes, _ = load_checkpoint(tmp_path / "run/L8/codes.safetensors")
    from hashkit.assemble import build_dataset

    data = build_dataset(loaded.recipe)
    again = encode_split(loaded.model, data.split("query"), loaded.recipe, torch.device("cpu"))
    assert torch.equal(again.codes, codes["last.query"])
    assert torch.equal(loaded.database_codes, codes["last.database_learned"])
    assert set(loaded.protocol_state) >= {"B", "U"}


def test_cli_train_and_eval(tmp_path, capsys):
    from hashkit.cli.main import main
    from hashkit.recipe.toml_writer import dumps_toml

    recipe_file = tmp_path / "tiny.toml"
    recipe_file.write_text(dumps_toml(th.adsh_recipe(protocol={"name": "adsh", "rounds": 1, "epochs": 1,
                                                               "num_samples": 16})))
    assert main(["train", str(recipe_file), "--out", str(tmp_path / "run"), "--set", "train.log_every=1"]) == 0
    trained = capsys.readouterr().out
    assert "learned mAP" in trained
    assert main(["eval", str(tmp_path / "run"), "--json", "--set", "eval.drop_last_item=true"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["results"]["8"]["last"]["learned"]["drop_last_item"] is True
    assert report["results"]["8"]["last"]["learned"]["num_database"] == 39  # 40 minus the dropped last item
    assert main(["train", str(recipe_file), "--out", str(tmp_path / "run")]) == 2  # refuses to overwrite
    assert "exists and is not empty" in capsys.readouterr().err
    assert tomllib.loads((tmp_path / "run" / "recipe.toml").read_text())["train"]["log_every"] == 1


def test_protocol_embedding_requests_get_current_model_embeddings(tmp_path):
    """Before every round the trainer embeds the items a protocol asks for, with the model in eval mode."""
    recipe = th.tiny_recipe()
    recipe["protocol"] = {"name": "refresh_recorder_test", "rounds": 2}
    train(recipe, tmp_path / "run")
    got = th.RefreshRecorder.received
    assert [r for r, _, _ in got] == [0, 1]
    for _, idx, emb in got:
        assert torch.equal(idx, torch.arange(5)) and emb.shape == (5, 8)
        assert emb.abs().max() <= 1  # relaxed codes
    assert not torch.equal(got[0][2], got[1][2])  # the model changed between the rounds


def test_run_records_its_split_and_resume_refuses_a_changed_one(tmp_path):
    from hashkit.errors import CheckpointError

    run = tmp_path / "run"
    recipe = th.tiny_recipe()
    train(recipe, run)
    split = json.loads((run / "split.json").read_text())
    assert split["dataset"] == "demo" and split["checksum"].startswith("sha256:")
    assert split["counts"]["query"] == 20 and split["counts"]["database"] == 40
    (run / "split.json").write_text(json.dumps({**split, "checksum": "sha256:" + "0" * 64}))
    with pytest.raises(CheckpointError, match="split changed"):
        train(None, run, resume=True)
