"""``xflow rl`` subcommands (registered through xflow.envs.cli.register)."""
from __future__ import annotations

import argparse
import json

import pytest

from xflow.envs.cli import register
from xflow.errors import XflowError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xflow")
    register(p.add_subparsers(dest="command"))
    return p


def test_train_eval_validate(tmp_path):
    p = _parser()
    args = p.parse_args(["rl", "train", "--model", "builder:split_concat", "--total-timesteps", "8",
                         "--num-steps", "8", "--runs-dir", str(tmp_path), "--max-candidates", "4",
                         "--horizon", "3", "--cost-model", "nominal"])
    rep = args.func(args)
    assert rep.data["episodes"] >= 1 and "run dir" in rep.text
    ckpt = rep.data["checkpoint"]
    args = p.parse_args(["rl", "eval", "--checkpoint", ckpt, "--model", "builder:split_concat",
                         "--model", "builder:transpose_chain"])
    rep = args.func(args)
    searches = {(r["model"], r["search"]) for r in rep.data["results"]}
    assert ("builder:transpose_chain", "greedy") in searches and len(searches) == 6
    json.dumps(rep.data, default=str)
    episodes = f"{rep.data['checkpoint'].rsplit('/', 1)[0]}/episodes.csv"
    args = p.parse_args(["rl", "validate", episodes, "--check-reward"])
    assert args.func(args).data["ok"]


def test_validate_fails_on_a_tampered_file(tmp_path):
    from xflow.envs.state import EpisodeState, write_states_csv

    path = write_states_csv([EpisodeState("builder:split_concat", (3,), ("x",),
                                          config={"max_candidates": 4, "horizon": 3})],
                            tmp_path / "e.csv")
    args = _parser().parse_args(["rl", "validate", str(path)])
    with pytest.raises(XflowError, match="did not replay"):
        args.func(args)


def test_eval_missing_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:  # refused at parse time, before any work
        _parser().parse_args(["rl", "eval", "--checkpoint", str(tmp_path / "none.pt")])
    assert exc.value.code == 2 and "does not exist" in capsys.readouterr().err


def test_rl_without_subcommand_is_a_user_error():
    args = _parser().parse_args(["rl"])
    with pytest.raises(XflowError, match="subcommand"):
        args.func(args)


def test_optimize_writes_a_verified_graph(tmp_path):
    import onnx

    from xflow.envs.features import EDGE_DIM, NODE_DIM
    from xflow.graphs.builders import build
    from xflow.nn import GraphActorCritic

    src = tmp_path / "in.onnx"
    onnx.save(build("split_concat"), src)
    ckpt = GraphActorCritic(5, NODE_DIM, EDGE_DIM, 8, 1).save(
        tmp_path / "agent.pt", args={"horizon": 3, "cost_model": "nominal"})
    out = tmp_path / "out.onnx"
    args = _parser().parse_args(["rl", "optimize", str(src), "--checkpoint", str(ckpt),
                                 "-o", str(out), "--repeats", "3"])
    rep = args.func(args)
    assert out.exists() and rep.data["method"] == "rl" and "wrote" in rep.text
    if rep.data["n_actions"]:
        assert rep.data["kept"] in ("original", "rewritten")


def test_env_bench_reports_step_time_candidates_and_memory(tmp_results):
    p = _parser()
    args = p.parse_args(["rl", "env-bench", "--model", "builder:inception_like", "--steps", "5",
                         "--label", "test", "--save", "--json"])
    rep = args.func(args)
    d = rep.data
    assert d["steps_total"] >= 10 and d["step_ms"]["median"] > 0 and d["step_ms"]["clock"] == "thread"
    assert d["candidates_per_step"]["median"] >= 1 and d["memory"][0]["rss_mb"] > 0
    json.loads(json.dumps(d, allow_nan=False))
    import pandas as pd

    rows = pd.read_csv(d["wrote"])
    assert set(rows["mode"]) == {"incremental"} and len(rows) == 2 and rows["samples_ms"].str.count(";").min() == 4
    # a second run appends its rows, each with its own provenance
    args = p.parse_args(["rl", "env-bench", "--model", "builder:split_concat", "--steps", "2",
                         "--label", "test2", "--save", "--json"])
    rows = pd.read_csv(args.func(args).data["wrote"])
    assert len(rows) == 4 and rows["git_sha"].notna().all() and rows["timestamp"].notna().all()


def test_env_bench_rejects_zero_steps():
    with pytest.raises(SystemExit):
        _parser().parse_args(["rl", "env-bench", "--steps", "0"])


def _tiny_policy(tmp_path):
    from xflow.envs.features import EDGE_DIM, NODE_DIM
    from xflow.nn import GraphActorCritic

    return GraphActorCritic(9, NODE_DIM, EDGE_DIM, 8, 1).save(
        tmp_path / "agent.pt", args={"horizon": 3, "cost_model": "nominal"})


def test_evaluate_reports_every_method_as_strict_json(tmp_path):
    ckpt = _tiny_policy(tmp_path)
    args = _parser().parse_args(["rl", "evaluate", "--policy", str(ckpt), "--model", "builder:inception_like",
                                 "--seeds", "2", "--repeats", "2", "--json"])
    rep = args.func(args)
    assert [r["method"] for r in rep.data["methods"]] == ["rl", "rl-sample", "greedy", "beam", "random"]
    assert "greedy" in rep.text and "measured" in rep.text
    json.loads(json.dumps(rep.data, allow_nan=False))


def test_evaluate_shape_on_a_builder_is_a_clear_error(tmp_path):
    args = _parser().parse_args(["rl", "evaluate", "--policy", str(_tiny_policy(tmp_path)),
                                 "--model", "builder:split_concat", "--shape", "x=1x4"])
    with pytest.raises(XflowError, match="zoo models only"):
        args.func(args)


def test_optimize_defaults_to_the_committed_policy_and_says_when_it_is_missing(tmp_path, monkeypatch):
    import onnx

    import xflow.agents.policy_eval as pe
    from xflow.graphs.builders import build

    src = tmp_path / "in.onnx"
    onnx.save(build("split_concat"), src)
    args = _parser().parse_args(["rl", "optimize", str(src), "--repeats", "0"])
    assert args.checkpoint is None
    monkeypatch.setattr(pe, "repo_root", lambda: tmp_path)
    with pytest.raises(XflowError, match="pretrained policy .* is missing"):
        args.func(args)
    bad = tmp_path / pe.DEFAULT_POLICY
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a checkpoint")
    args = _parser().parse_args(["rl", "optimize", str(src), "--repeats", "0"])
    with pytest.raises(XflowError, match="not a GraphActorCritic checkpoint"):
        args.func(args)
