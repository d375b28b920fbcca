"""Bad input never loses data (issue 17): every case gives a non-zero exit, one line naming the
problem and the fix, no traceback, and leaves every input file byte-identical.

The table runs the CLI in-process through ``xflow.cli.main`` (fast); a few cases also run as a
real subprocess (end to end). Data-loss, resume and self-healing-cache cases follow the table.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from xflow.cli import main
from xflow.graphs import builders


# --------------------------------------------------------------------------------------------
# fixtures: a folder of input files whose bytes must never change


def _relu_model(dims) -> onnx.ModelProto:
    """x -> Relu -> y: a model no rewrite rule matches."""
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "relu",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    """``tmp_path`` as cwd holding m.onnx, relu.onnx, dyn.onnx, empty.onnx, bad.csv, header.csv."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path / "_cache"))
    monkeypatch.setenv("XFLOW_RESULTS", str(tmp_path / "_results"))
    onnx.save(builders.build("inception_like"), "m.onnx")
    onnx.save(_relu_model([1, 4, 8, 8]), "relu.onnx")
    onnx.save(builders.build("conv_bn_relu", batch="N"), "dyn.onnx")
    Path("empty.onnx").write_bytes(b"")
    Path("bad.csv").write_text("a,b\n1,2\n")
    Path("header.csv").write_text("model_id,actions,hashes,reward,walltime,config\n")
    Path("a_file").write_text("not a folder\n")
    os.symlink("m.onnx", "link.onnx")
    return tmp_path


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.iterdir()) if p.is_file() and not p.is_symlink()}


def _assert_clean_error(rc: int, err: str, expect: str, *, rc_expected: int = 2) -> None:
    assert rc == rc_expected, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ": error" in ln]
    assert len(errors) == 1, err  # one line names the problem (and what to do)
    assert errors[0] == lines[-1], err
    assert expect in errors[0], err


# (argv, text the one error line must contain): refused at parse time or before any work
CASES = [
    # silent or wrong before
    (["sparsify", "run", "--epochs", "0"], "argument --epochs: must be between 1"),
    (["sparsify", "run", "--hidden", "0"], "argument --hidden: must be between 1"),
    (["sparsify", "run", "--seeds", "0"], "argument --seeds: must be between 1"),
    (["sparsify", "run", "--delta-a", "-1"], "argument --delta-a: must be ≥ 0"),
    (["rl", "train", "--total-timesteps", "-8"], "argument --total-timesteps: must be between 1"),
    (["rl", "train", "--total-timesteps", "8", "--num-steps", "128"], "--total-timesteps 8 is below --num-steps 128"),
    (["rl", "train", "--model", "bogus"], "argument --model: model id 'bogus' has no scheme"),
    (["rl", "train", "--model", "builder:nosuch"], "unknown builder 'nosuch'"),
    (["rl", "train", "--model", "zoo:nosuch"], "unknown zoo model 'nosuch'"),
    (["rl", "train", "--model", "file:missing.onnx"], "model file 'missing.onnx' does not exist"),
    (["rl", "eval", "--checkpoint", "m.onnx", "--model", "nosuch.onnx"], "model file 'nosuch.onnx' does not exist"),
    (["rl", "train", "--exp-name", "../../evil"], "argument --exp-name: --exp-name '../../evil' may hold only"),
    (["rl", "eval", "--checkpoint", "m.onnx"], "m.onnx is not a GraphActorCritic checkpoint"),
    (["rl", "validate", "empty.onnx"], "'empty.onnx' is empty"),
    (["rl", "validate", "header.csv"], "holds no episodes"),
    (["algsel", "tune", "--e2e-repeats", "0"], "argument --e2e-repeats: must be between 2"),
    (["algsel", "tune", "--threads", "1000"], "argument --threads: must be between 0 and"),
    (["algsel", "tune", "--threads", "-2"], "argument --threads: must be between 0 and"),
    (["parallel", "compile", "m.onnx", "-o", "out.py", "--workers", "1000"], "argument --workers: must be between 1"),
    (["parallel", "compile", "m.onnx", "-o", "out.py", "--min-gain", "nan"], "argument --min-gain: expected a finite"),
    (["parallel", "compile", "m.onnx", "-o", "out.py", "--min-gain", "-5"], "argument --min-gain: must be ≥ 0"),
    (["rewrite", "search", "m.onnx", "--alpha", "nan"], "argument --alpha: expected a finite number"),
    (["rewrite", "search", "m.onnx", "--alpha", "-1"], "argument --alpha: must be ≥ 1"),
    (["rewrite", "optimize", "m.onnx", "-o", "o.onnx", "--budget", "-1"], "argument --budget: must be between 1"),
    (["rewrite", "search", "m.onnx", "--repeats", "-3"], "argument --repeats: must be between 2"),
    (["rewrite", "search", "m.onnx", "--repeats", "1"], "or 0 to turn it off"),
    (["latency", "m.onnx", "--repeats", "1"], "argument --repeats: must be between 2"),
    (["compare", "m.onnx", "dyn.onnx"], "fix it with --input-shape"),
    (["compare", "m.onnx", "m.onnx", "--min-effect", "nan"], "argument --min-effect: expected a finite"),
    (["latency", "m.onnx", "--threads", "1000"], "argument --threads: must be between 0 and"),
    # raw errors before
    (["sparsify", "run", "--delta-a", "nan"], "argument --delta-a: expected a finite number, got 'nan'"),
    (["autobatch", "bench", "--repeats", "0"], "argument --rounds/--repeats: must be >= 2"),
    (["parallel", "bench", "m.onnx", "--repeats", "0"], "argument --repeats: must be between 2"),
    (["rl", "validate", "bad.csv"], "'bad.csv' is not an episodes CSV"),
    (["zoo", "export", "squeezenet1_1", "--cfg", "image_size=-5"], "image_size=-5 of 'squeezenet1_1' must be ≥ 1"),
    (["zoo", "export", "squeezenet1_1", "--batch", "1e8"], "argument --batch: expected a whole number, got '1e8'"),
    (["zoo", "export", "squeezenet1_1", "--batch", "100000000"], "argument --batch: must be between 1 and 4096"),
    (["algsel", "tune", "--device", "tpu"], "unknown device 'tpu'; use cpu or cuda[:N]"),
    (["algsel", "tune", "--batch", "100000000"], "argument --batch: must be between 1 and 1024"),
    (["autobatch", "bench", "--threads", "-4"], "argument --threads: must be between 1"),
    (["sparsify", "run", "--dataset", "sbm:0:10"], "nodes must be a whole number between 16"),
    (["sparsify", "run", "--dataset", "sbm:abc"], "nodes and degree must be numbers"),
    (["sparsify", "run", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["autobatch", "bench", "--batch", "100000000"], "argument --batch: must be between 1 and 4096"),
    (["autobatch", "bench", "--baselines", "eager,magic"], "unknown name(s) 'magic'"),
    (["render", "m.onnx", "-o", "a_file/g.svg"], "cannot be created: 'a_file' is a file"),
    (["render", "m.onnx", "-o", "/proc/xflow/g.svg"], "'/proc/xflow/g.svg' cannot be created"),
    (["rewrite", "apply", "m.onnx", "--rule", "x", "-o", "/proc/xflow.onnx"], "'/proc/xflow.onnx' cannot be created"),
    (["algsel", "tune", "--save", "/proc/choices.json"], "argument --save: output '/proc/choices.json'"),
    (["algsel", "tune", "--save", "choices.txt"], "must end in .json"),
    (["latency", "missing.onnx"], "ONNX model 'missing.onnx' does not exist"),
    (["latency", "empty.onnx"], "ONNX model 'empty.onnx' is empty"),
    (["latency", "dyn.onnx"], "input 'x' has dynamic shape (N, 3, 16, 16); fix it with --input-shape x=1x3x16x16 or --dim N=1"),
    (["latency", "m.onnx", "--input-shape", "x=1xbad"], "argument --input-shape: expected INPUT="),
    (["latency", "dyn.onnx", "--dim", "batch=1"], "no free dimension 'batch'"),
    (["latency", "dyn.onnx", "--input-shape", "nope=1x3x8x8"], "has no input 'nope'"),
    (["latency", "dyn.onnx", "--input-shape", "x=1x3x8x8"], "--input-shape x=1x3x8x8 conflicts with the model's fixed"),
    # data loss before
    (["rewrite", "apply", "m.onnx", "--rule", "x", "-o", "m.onnx"], "is the input file"),
    (["rewrite", "apply", "m.onnx", "--rule", "x", "-o", "./link.onnx"], "is the input file"),
    (["rewrite", "optimize", "m.onnx", "-o", "m.onnx"], "is the input file"),
    (["rewrite", "search", "m.onnx", "-o", "m.onnx"], "is the input file"),
    (["rl", "optimize", "m.onnx", "--checkpoint", "m.onnx", "-o", "m.onnx"], "is the input file"),
    (["parallel", "compile", "m.onnx", "-o", "m.py"], "would write m.onnx next to it, which is the input model"),
    (["parallel", "compile", "m.onnx", "-o", "m.onnx"], "must end in .py"),
]


@pytest.mark.parametrize("argv, expect", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_is_one_clean_line_and_touches_nothing(inputs, capsys, argv, expect):
    before = _digests(inputs)
    rc = main(argv)
    out, err = capsys.readouterr()
    _assert_clean_error(rc, err, expect)
    assert out == ""
    assert _digests(inputs) == before  # no input changed, nothing new written next to them


def test_cfg_a_model_cannot_take_is_one_line(inputs, capsys):
    """``--cfg image_size=8`` used to print two exporter tracebacks."""
    rc = main(["zoo", "export", "squeezenet1_1", "--cfg", "image_size=8", "--cfg", "num_classes=10"])
    _assert_clean_error(rc, capsys.readouterr().err, "does not run in torch with image_size=8")
    assert not list((inputs / "_cache").rglob("*.onnx"))


def test_debug_shows_the_traceback(inputs):
    with pytest.raises(Exception, match="does not run in torch"):
        main(["--debug", "zoo", "export", "squeezenet1_1", "--cfg", "image_size=8", "--cfg", "num_classes=10"])


# --------------------------------------------------------------------------------------------
# global flags, help, JSON


def test_version_and_global_flags_on_either_side(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip().startswith("xflow ")
    for argv in (["--json", "zoo", "list"], ["zoo", "list", "--json"], ["zoo", "--json", "list"]):
        assert main(argv) == 0
        assert "models" in json.loads(capsys.readouterr().out), argv


def test_help_shows_defaults(capsys):
    assert main(["parallel", "compile", "--help"]) == 0
    text = capsys.readouterr().out
    assert "(default: 2)" in text and "(default: 0.05)" in text  # --workers, --min-gain


def test_json_is_strict_with_null_and_reason(capsys):
    from xflow.cli import _emit
    from xflow.clitools import Report

    _emit(Report(data={"speedup": float("nan"), "e2e": {"ms": [1.0, float("inf")]}}), as_json=True)
    data = json.loads(capsys.readouterr().out)  # strict parse would fail on NaN anyway:
    assert data["speedup"] is None and data["e2e"]["ms"] == [1.0, None]
    assert set(data["null_reasons"]) == {"speedup", "e2e.ms[1]"}


def test_unexpected_os_error_names_the_path(inputs, capsys, monkeypatch):
    import xflow.graphs.cli as gcli

    def boom(args):
        raise PermissionError(13, "Permission denied", "/some/where.onnx")

    monkeypatch.setattr(gcli, "_cmd_zoo_list", boom)
    rc = main(["zoo", "list"])
    err = capsys.readouterr().err
    _assert_clean_error(rc, err, "Permission denied: '/some/where.onnx'", rc_expected=1)


# --------------------------------------------------------------------------------------------
# data loss: outputs never replace inputs; unchanged models are copied, not re-serialized


def test_optimize_with_no_rewrite_copies_the_input_bytes(inputs, capsys):
    before = _digests(inputs)
    assert main(["rewrite", "optimize", "relu.onnx", "-o", "out.onnx", "--repeats", "0", "--search", "greedy"]) == 0
    assert "0 rewrite(s)" in capsys.readouterr().out
    assert Path("out.onnx").read_bytes() == Path("relu.onnx").read_bytes()
    assert {k: v for k, v in _digests(inputs).items() if k != "out.onnx"} == before


def test_parallel_compile_writes_beside_without_touching_the_model(inputs, capsys):
    before = _digests(inputs)
    assert main(["parallel", "compile", "m.onnx", "-o", "gen/m.py", "--cost", "analytic"]) == 0
    assert {p.name for p in (inputs / "gen").iterdir()} == {"m.py", "m.onnx", "m.json"}
    assert {k: v for k, v in _digests(inputs).items()} == before


def test_dynamic_model_runs_with_input_shape(inputs, capsys):
    before = _digests(inputs)
    rc = main(["rewrite", "search", "dyn.onnx", "--repeats", "0", "--budget", "1", "--input-shape", "x=1x3x16x16"])
    out, err = capsys.readouterr()
    assert rc == 0 and "search on" in out, err
    rc = main(["rewrite", "search", "dyn.onnx", "--repeats", "0", "--budget", "1", "--dim", "N=2", "--json"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["initial_cost"] > 0
    assert _digests(inputs) == before


def test_sparsify_save_keeps_finished_seeds_and_resumes(inputs, capsys, monkeypatch):
    """``--seeds 4 --save`` interrupted after two seeds keeps them; the same command resumes."""
    import xflow.sparsify.experiment as experiment

    real, calls = experiment.run_trained, []

    def run_trained(cfg):
        calls.append(cfg["seed"])
        if len(calls) == 3 and interrupt:
            raise KeyboardInterrupt
        return real(cfg)

    monkeypatch.setattr(experiment, "run_trained", run_trained)
    argv = ["sparsify", "run", "--dataset", "sbm:64:4", "--epochs", "2", "--seeds", "4", "--save", "--json"]
    interrupt = True
    assert main(argv) == 130
    parts = list((inputs / "_results" / "sparsify_cli").glob("*.parquet"))
    assert len(parts) == 2  # the two finished seeds were saved as they finished
    interrupt = False
    calls.clear()
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert calls == [2, 3] and data["resumed"] == 2 and len(data["saved"]) == 2
    assert len(list((inputs / "_results" / "sparsify_cli").glob("*.parquet"))) == 4
    assert data["summary"][0]["test_acc_std"] is not None  # 4 seeds: a spread


def test_plus_minus_only_with_two_seeds(inputs, capsys):
    assert main(["sparsify", "run", "--dataset", "sbm:64:4", "--epochs", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"][0]["test_acc_std"] is None and "one seed" in str(data["null_reasons"])
    assert main(["sparsify", "run", "--dataset", "sbm:64:4", "--epochs", "2"]) == 0
    assert "±" not in capsys.readouterr().out
    assert main(["sparsify", "run", "--dataset", "sbm:64:4", "--epochs", "2", "--seeds", "2"]) == 0
    assert "±" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# self-healing caches: a corrupt entry is reported with its path, removed and rebuilt


def _truncate(p: Path, keep: int | None = None) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: (len(data) // 2 if keep is None else keep)])


def test_truncated_zoo_export_is_rebuilt(inputs, capsys, caplog):
    argv = ["zoo", "export", "nasrnn", "--cfg", "hidden=16", "--cfg", "seq=2", "--json"]
    assert main(argv) == 0
    path = Path(json.loads(capsys.readouterr().out)["path"])
    good = path.read_bytes()
    _truncate(path)
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert path.read_bytes() == good  # deterministic re-export
    assert f"corrupt cache entry {path}" in err and "rebuilt" in err
    from xflow.graphs.model import load_model

    load_model(path)


def test_truncated_sweep_entry_is_rerun(tmp_path, caplog):
    from xflow.sweep import config_hash, example_task, grid, run_sweep

    cfgs = grid(x=[1, 2, 3])
    run_sweep(example_task, cfgs, name="t", backend="local", cache=tmp_path, progress=False)
    entry = tmp_path / f"{config_hash(example_task, {'x': 2})}.json"
    _truncate(entry)
    res = run_sweep(example_task, cfgs, name="t", backend="local", cache=tmp_path, progress=False)
    assert (res.n_new, res.n_cached, res.n_failed) == (1, 2, 0)
    assert sorted(r["value"] for r in res.records) == [1.0, 4.0, 9.0]
    assert any(str(entry) in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_tampered_sweep_entry_fails_its_check(tmp_path):
    from xflow.sweep import config_hash, example_task, run_sweep

    run_sweep(example_task, [{"x": 3}], name="t", backend="local", cache=tmp_path, progress=False)
    entry = tmp_path / f"{config_hash(example_task, {'x': 3})}.json"
    entry.write_text(entry.read_text().replace("9.0", "10.0"))  # valid JSON, wrong content
    res = run_sweep(example_task, [{"x": 3}], name="t", backend="local", cache=tmp_path, progress=False)
    assert res.n_new == 1 and res.records[0]["value"] == 9.0


_SWEEP_CHILD = """
import sys, time
from xflow.sweep import run_sweep

def slow(cfg):
    time.sleep(0.05)
    return {"metric": "x", "value": cfg["x"]}

slow.__module__ = "bad_input_child"
res = run_sweep(slow, [{"x": i} for i in range(20)], name="same", backend="local",
                cache=sys.argv[1], progress=False)
assert res.n_failed == 0 and len(res.records) == 20, res
"""


def test_two_identical_sweeps_at_once(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [subprocess.Popen([sys.executable, "-c", _SWEEP_CHILD, str(tmp_path)], env=env,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert len(list(tmp_path.glob("*.json"))) == 20 and not list(tmp_path.glob("*.tmp*"))


def test_ray_that_cannot_start_falls_back_to_local(tmp_path, monkeypatch, caplog):
    import ray

    from xflow.sweep import example_task, grid, run_sweep

    def fail(*a, **k):
        raise Exception("The current node timed out during startup.")

    import xflow.sweep as sweep

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **k: calls.append(1) or fail())
    monkeypatch.setattr(sweep, "_ray_unavailable_until", 0.0)
    monkeypatch.setenv("XFLOW_RAY_START_TIMEOUT_S", "5")
    res = run_sweep(example_task, grid(x=[1, 2]), name="r", backend="ray", cache=tmp_path, progress=False)
    assert res.n_new == 2 and res.n_failed == 0
    assert len(calls) >= 2  # retried before giving up
    assert any("running this sweep locally" in r.getMessage() for r in caplog.records)
    n = len(calls)  # a second sweep of this process does not wait for Ray again
    res = run_sweep(example_task, grid(x=[3]), name="r", backend="ray", cache=tmp_path, progress=False)
    assert res.n_new == 1 and len(calls) == n


def test_truncated_parallel_profile_is_remeasured(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path))
    from xflow.parallel.cost import measured_costs
    from xflow.parallel.dataflow import from_onnx

    g = from_onnx(builders.build("inception_like"))
    first = measured_costs(g, (1,), repeats=1, warmup=0, calibrate=False)
    (prof,) = (tmp_path / "parallel" / "profiles").glob("*.json")
    _truncate(prof)
    again = measured_costs(g, (1,), repeats=1, warmup=0, calibrate=False)
    assert set(again) == set(first) and prof.exists()
    assert any(str(prof) in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_truncated_processed_dataset_is_rebuilt(tmp_path, monkeypatch, caplog):
    from xflow.sparsify.datasets import find_planetoid_raw, load_planetoid

    if find_planetoid_raw("cora") is None:
        pytest.skip("Cora raw files not available")
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path))
    n = load_planetoid("cora").num_nodes
    processed = tmp_path / "datasets" / "Planetoid" / "Cora" / "processed" / "data.pt"
    _truncate(processed)
    assert load_planetoid("cora").num_nodes == n
    assert any("corrupt processed dataset" in r.getMessage() for r in caplog.records)
    # corrupt without the check file too (built by an older xflow, or the check file lost)
    (processed.parent / ".xflow-check.json").unlink()
    _truncate(processed)
    assert load_planetoid("cora").num_nodes == n


def test_truncated_autotune_cache_recovers(tmp_path, caplog):
    from xflow.algsel.autotune import _save_cache, load_cache

    path = tmp_path / "autotune.json"
    _save_cache({"k": {"times_ms": {"default": 1.0}}}, path)
    assert load_cache(path) == {"k": {"times_ms": {"default": 1.0}}}
    _truncate(path)
    assert load_cache(path) == {} and not path.exists()
    assert any(str(path) in r.getMessage() for r in caplog.records)


def test_truncated_calibrated_profile_is_remeasured(tmp_path, monkeypatch, caplog):
    """A half-written calibrated device profile is reported (naming the file) and re-measured, not a crash."""
    from xflow.costs import calibration
    from xflow.costs.profiles import InvalidProfile, nominal, read_profile, write_profile

    path = tmp_path / "cpu-t1.json"
    write_profile(nominal("cpu"), path)
    assert calibration.calibrate(path=path) == read_profile(path)  # a valid file is reused

    class Remeasured(Exception):
        pass

    def fake_time_micro(*a, **k):
        raise Remeasured

    monkeypatch.setattr(calibration, "_time_micro", fake_time_micro)
    _truncate(path)
    with pytest.raises(InvalidProfile, match=str(path)):
        read_profile(path)
    with pytest.raises(Remeasured):
        calibration.calibrate(path=path)
    assert any(str(path) in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_truncated_measured_latency_cache_is_rebuilt(tmp_path, monkeypatch, caplog):
    """The end-to-end measured cost's disk cache: served across instances, rebuilt when truncated."""
    from xflow.costs import measured
    from xflow.graphs import builders

    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path))
    calls: list = []
    monkeypatch.setattr(measured, "measure_ms", lambda graph, **k: calls.append(1) or 0.25)
    m = builders.build("inception_like")
    assert measured.MeasuredCost().cost(m) == 0.25 and len(calls) == 1
    assert measured.MeasuredCost().cost(m) == 0.25 and len(calls) == 1  # from disk
    (path,) = (tmp_path / "costs" / "latency").glob("*.json")
    _truncate(path)
    assert measured.MeasuredCost().cost(m) == 0.25 and len(calls) == 2
    assert any(str(path) in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert measured.MeasuredCost().cost(m) == 0.25 and len(calls) == 2


def test_two_rl_runs_in_the_same_second_keep_separate_folders(tmp_path, monkeypatch):
    import types

    import xflow.agents.ppo as ppo

    monkeypatch.setattr(ppo, "time", types.SimpleNamespace(time=lambda: 1_000_000.0))
    tiny = dict(total_timesteps=16, num_steps=8, num_minibatches=2, update_epochs=1, hidden=8, gnn_layers=1,
                max_candidates=8, horizon=3, cost_model="nominal", runs_dir=str(tmp_path), seed=1)
    a, b = ppo.train(ppo.Args(**tiny)), ppo.train(ppo.Args(**tiny))
    assert a.run_dir != b.run_dir and b.run_name == f"{a.run_name}-2"
    for r in (a, b):
        assert {"args.json", "scalars.csv", "episodes.csv", "agent.pt"} <= {p.name for p in r.run_dir.iterdir()}
    assert not list(tmp_path.rglob("*.tmp*"))


def test_a_failed_results_write_leaves_no_part(tmp_path, monkeypatch):
    import pandas as pd

    from xflow.results import read_results, write_records

    write_records([{"metric": "m", "value": 1.0}], "r", directory=tmp_path)

    def boom(self, path, *a, **k):
        Path(path).write_bytes(b"PAR1 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_parquet", boom)
    with pytest.raises(KeyboardInterrupt):
        write_records([{"metric": "m", "value": 2.0}], "r", directory=tmp_path)
    monkeypatch.undo()
    assert len(list(tmp_path.iterdir())) == 1  # no half-written part, no temporary file left
    assert read_results("r", directory=tmp_path)["value"].tolist() == [1.0]


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    from xflow.errors import ModelLoadError
    from xflow.nn import GraphActorCritic

    path = GraphActorCritic(4, 8, 2, hidden_channels=8, num_layers=1).save(tmp_path / "agent.pt")
    assert GraphActorCritic.load(path).num_actions == 4
    _truncate(path)
    with pytest.raises(ModelLoadError, match="is corrupt"):
        GraphActorCritic.load(path)
    assert path.exists()  # a user's checkpoint is never deleted


# --------------------------------------------------------------------------------------------
# end to end: a real subprocess


def _xflow(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-m", "xflow", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_end_to_end_bad_inputs(inputs):
    before = _digests(inputs)
    r = _xflow("parallel", "compile", "m.onnx", "-o", "m.py", cwd=inputs)
    _assert_clean_error(r.returncode, r.stderr, "which is the input model")
    r = _xflow("sparsify", "run", "--epochs", "0", cwd=inputs)
    _assert_clean_error(r.returncode, r.stderr, "argument --epochs")
    r = _xflow("rl", "eval", "--checkpoint", "m.onnx", cwd=inputs)  # imports torch_geometric: no warnings
    _assert_clean_error(r.returncode, r.stderr, "is not a GraphActorCritic checkpoint")
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert _digests(inputs) == before
