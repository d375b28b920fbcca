"""xflow.agents.policy_eval: input re-shaping and the per-method evaluation protocol."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from xflow.agents.policy_eval import evaluate_policy, parse_shape, shaped_model_id
from xflow.errors import XflowError


def test_parse_shape_reads_x_or_commas_and_rejects_junk():
    assert parse_shape("input=2x3x64x64") == ("input", (2, 3, 64, 64))
    assert parse_shape("x=1,16,256") == ("x", (1, 16, 256))
    for bad in ("input", "input=", "input=2xa", "=2x3", "input=0x3"):
        with pytest.raises(XflowError, match="NAME=DIMS"):
            parse_shape(bad)


def test_shaped_model_id_maps_batch_and_sequence_length_and_refuses_the_rest():
    import onnx

    from xflow.graphs import zoo

    model = zoo.load("bert_encoder")
    name = model.graph.input[0].name
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    mid = shaped_model_id("zoo:bert_encoder", {name: (2, 32, dims[2])})
    assert mid == "zoo:bert_encoder?batch=2&seq=32"
    from xflow.graphs.model_ids import resolve_model

    shaped = resolve_model(mid)
    assert [d.dim_value for d in shaped.graph.input[0].type.tensor_type.shape.dim] == [2, 32, dims[2]]
    with pytest.raises(XflowError, match="hidden width"):
        shaped_model_id("zoo:bert_encoder", {name: (1, 32, dims[2] + 1)})
    with pytest.raises(XflowError, match="no input"):
        shaped_model_id("zoo:bert_encoder", {"nope": (1, 32, dims[2])})
    with pytest.raises(XflowError, match="zoo models only"):
        shaped_model_id("builder:split_concat", {"x": (1, 2)})
    assert shaped_model_id("zoo:bert_encoder", {}) == "zoo:bert_encoder"
    assert isinstance(shaped, onnx.ModelProto)


def test_shaped_model_id_image_models_square_sizes_and_vit_patches():
    from xflow.graphs import zoo

    name = zoo.load("inception_toy").graph.input[0].name
    assert shaped_model_id("zoo:inception_toy", {name: (3, 3, 32, 32)}) == "zoo:inception_toy?batch=3&image_size=32"
    with pytest.raises(XflowError, match="square"):
        shaped_model_id("zoo:inception_toy", {name: (1, 3, 32, 48)})
    vit = zoo.load("vit_encoder").graph.input[0].name
    with pytest.raises(XflowError, match="patch size 16"):
        shaped_model_id("zoo:vit_encoder", {vit: (1, 3, 120, 120)})


@pytest.fixture()
def policy(tmp_path):
    from xflow.envs.features import EDGE_DIM, NODE_DIM
    from xflow.nn import GraphActorCritic

    return GraphActorCritic(9, NODE_DIM, EDGE_DIM, 8, 1).save(
        tmp_path / "agent.pt", args={"horizon": 3, "cost_model": "nominal"})


def test_evaluate_policy_runs_every_method_with_seeds_and_measures_distinct_graphs(policy):
    res = evaluate_policy(policy, "builder:inception_like", seeds=3, repeats=3)
    rows = {r["method"]: r for r in res["methods"]}
    assert list(rows) == ["rl", "rl-sample", "greedy", "beam", "random"]
    assert rows["random"]["seeds"] == 3 and rows["rl-sample"]["seeds"] == 3 and rows["greedy"]["seeds"] == 1
    assert len(res["runs"]) == 3 + 3 + 3
    # greedy lowers the (nominal) cost on this graph and its final graph is timed against the original
    g = rows["greedy"]
    assert g["predicted_ratio"] < 1.0 and g["n_rewrites"] >= 1
    assert g["verdict"] in ("faster", "same", "slower") and g["speedup_lo"] <= g["measured_speedup"] <= g["speedup_hi"]
    assert rows["beam"]["predicted_ratio"] <= g["predicted_ratio"] + 1e-12
    assert rows["random"]["predicted_lo"] <= rows["random"]["predicted_ratio"] <= rows["random"]["predicted_hi"]
    assert res["measurement"]["graphs_timed"] == len({r["graph"] for r in res["runs"] if r["n_rewrites"]})
    assert res["cost_model"] == res["policy_cost_model"] == "nominal" and res["horizon"] == 3
    json.loads(json.dumps(res, allow_nan=False))


def test_evaluate_policy_without_measurement_and_bad_methods(policy):
    res = evaluate_policy(policy, "builder:split_concat", methods=("greedy", "random"), seeds=2, measure=False,
                          cost_model="calibrated")
    assert res["cost_model"] == "calibrated" and res["policy_cost_model"] == "nominal"  # searched vs trained
    assert all(r["measured_speedup"] is None or r["verdict"] == "unchanged" for r in res["runs"])
    json.loads(json.dumps(res, allow_nan=False))
    with pytest.raises(XflowError, match="unknown method"):
        evaluate_policy(policy, "builder:split_concat", methods=("dfs",))


@pytest.mark.parametrize("recipe", ["calibrated", "ort"])
def test_the_committed_policies_load_with_their_training_records(recipe):
    """Both committed policies (the default one and the ``ort``-reward one) load, were trained as
    their recipe of ``benchmarks/rl_pretrain.py`` says (cost model, training set) and hold out every
    evaluation model. Kills: a checkpoint trained under another reward, an evaluation model in training."""
    import importlib.util

    from xflow.agents.policy_eval import default_policy
    from xflow.nn import GraphActorCritic
    from xflow.paths import repo_root

    spec = importlib.util.spec_from_file_location("rl_pretrain", repo_root() / "benchmarks" / "rl_pretrain.py")
    pretrain = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pretrain)
    models, cost_model, policy = pretrain.RECIPES[recipe]
    path = repo_root() / policy
    from xflow.envs.report import DEFAULT_POLICY_NAME, ORT_POLICY_NAME  # the tables' names for these files

    assert path.name == {"calibrated": DEFAULT_POLICY_NAME, "ort": ORT_POLICY_NAME}[recipe]
    if recipe == "calibrated":
        assert path == default_policy()
    assert path.stat().st_size < 5e6  # small enough to commit
    agent, extra = GraphActorCritic.load_with_extra(path)
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["train_models"] == list(models)
    assert [extra["args"]["model"], *extra["args"]["extra_models"]] == list(models)
    assert extra["args"]["cost_model"] == record["args"]["cost_model"] == cost_model
    assert agent.diff_encoder and agent.num_actions == record["args"]["max_candidates"] + 1
    held_out = {"zoo:bert_base", "zoo:vit_encoder", "zoo:resnext50_32x4d", "zoo:inception_v3", "zoo:googlenet"}
    assert not held_out & set(record["train_models"])
    assert path.with_suffix(".curve.csv").exists()
    curve = pretrain.read_curve(path.with_suffix(".curve.csv"))
    assert len(curve) == record.get("total_episodes", record["episodes"])
    assert max(r["stage"] for r in curve) == len(pretrain.stage_ends(record))
    stage = record
    while "resumed_from" in stage:  # a continued policy: every earlier stage trained the same recipe
        prev = stage["resumed_from"]
        assert prev["recipe"] == record["recipe"] and prev["train_models"] == record["train_models"]
        assert prev["sha256"] != Path(f"{path}.sha256").read_text().split()[0]
        assert stage["args"]["init_checkpoint"] and prev["seed"] != stage["seed"]
        stage = prev


def _load_pretrain():
    import importlib.util

    from xflow.paths import repo_root

    spec = importlib.util.spec_from_file_location("rl_pretrain", repo_root() / "benchmarks" / "rl_pretrain.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_resumed_stage_numbers_its_curve_on_from_the_earlier_stages(tmp_path):
    """``rl_pretrain.py --resume`` keeps the earlier curve and numbers the new episodes and steps on
    from it. Kills: restarting the numbering (two episode 0s), dropping the earlier rows."""
    pretrain = _load_pretrain()
    before = [{"policy": "p.pt", "episode": i, "model": "zoo:a", "global_step": 25 * (i + 1), "episodic_return": -1.0,
               "episodic_length": 25, "final_cost_ratio": 1.0} for i in range(3)]
    new = [{"model": "zoo:b", "global_step": 10, "episodic_return": 0.5, "episodic_length": 10,
            "final_cost": 0.9, "initial_cost": 1.0},
           {"model": "zoo:a", "global_step": 35, "episodic_return": 0.1, "episodic_length": 25,
            "final_cost": 2.0, "initial_cost": 2.0}]
    rows = pretrain.curve_rows(before, new)
    assert [r["episode"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["global_step"] for r in rows] == [25, 50, 75, 85, 110]
    assert rows[3]["final_cost_ratio"] == 0.9 and set(rows[0]) == set(pretrain.CURVE_FIELDS)
    assert pretrain._total({"record": {"wall_s": 5.0, "total_wall_s": 12.0}}, "wall_s") == 12.0
    assert pretrain._total(None, "wall_s") == 0.0
    # stages from the nested records: 3 episodes, then 2 more
    assert pretrain.stage_ends({"episodes": 2, "resumed_from": {"episodes": 3}}) == [3, 5]
    (tmp_path / "p.json").write_text(json.dumps({"episodes": 2, "resumed_from": {"episodes": 3}}))
    with open(tmp_path / "p.curve.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=pretrain.CURVE_FIELDS)
        w.writeheader()
        w.writerows(rows)
    assert [r["stage"] for r in pretrain.read_curve(tmp_path / "p.curve.csv")] == [1, 1, 1, 2, 2]


@pytest.mark.parametrize("backend", ["ort", "torch"])
def test_measure_finals_times_each_distinct_graph_once_and_leaves_the_original_unchanged(backend):
    """The one measurement of final graphs that ``evaluate_policy`` and the RL ablation share, on
    ONNX Runtime and on the torch backend."""
    from xflow.agents.policy_eval import measure_finals
    from xflow.costs.registry import make_cost_model
    from xflow.graphs.model_ids import resolve_graph
    from xflow.rewrites.search import greedy_search

    orig = resolve_graph("builder:inception_like")
    res = greedy_search(orig, make_cost_model("nominal"), budget=2)
    assert res.actions, "greedy must rewrite this graph for the test to mean anything"
    finals = {orig.content_hash: orig.model, res.graph.content_hash: res.graph.model}
    per, info = measure_finals(orig.model, orig.content_hash, finals, rounds=3, backend=backend)
    assert info["backend"] == backend
    assert per[orig.content_hash]["verdict"] == "unchanged" and per[orig.content_hash]["measured_speedup"] == 1.0
    r = per[res.graph.content_hash]
    assert r["verdict"] in ("faster", "same", "slower") and r["speedup_lo"] <= r["measured_speedup"] <= r["speedup_hi"]
    assert info["graphs_timed"] == 1 and info["rounds"] == 3 and info["original_ms"] > 0
    assert measure_finals(orig.model, orig.content_hash, {orig.content_hash: orig.model}, backend=backend) == (
        {orig.content_hash: per[orig.content_hash]}, {})


def test_unknown_or_unavailable_backend_fails_before_any_search(tmp_path):
    import torch

    from xflow.agents.policy_eval import evaluate_policy
    from xflow.errors import DeviceUnavailable, XflowError

    with pytest.raises(XflowError, match="unknown backend 'tpu'"):
        evaluate_policy(tmp_path / "missing.pt", "builder:inception_like", backend="tpu")
    if not torch.cuda.is_available():  # checked before the policy is even loaded
        with pytest.raises(DeviceUnavailable, match="torch-cuda"):
            evaluate_policy(tmp_path / "missing.pt", "builder:inception_like", backend="torch-cuda")
