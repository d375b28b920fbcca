"""``xflow algsel`` CLI (in-process through ``xflow.cli.main``, one real subprocess) and ``run``."""
from __future__ import annotations

import json
import subprocess
import sys

from xflow.algsel import build_model, choices, run, swap
from xflow.cli import main

TUNE = ["algsel", "tune", "--model", "tiny", "--image", "16", "--repeats", "2", "--e2e-repeats", "2"]


def test_cli_list(capsys):
    assert main(["algsel", "list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "winograd_4x4" in {a["name"] for a in data["algorithms"]}
    assert {("linear", "gemm_t"), ("pool", "shift"), ("conv2d", "mkldnn_packed")} <= {(a["op"], a["name"]) for a in data["all"]}


def test_cli_tune_json_text_and_replay(tmp_results, capsys):
    assert main([*TUNE, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["choices"]) == 10 and data["e2e"]["torch"]["median_ms"] > 0  # 7 convs, 2 pools, 1 linear
    assert data["mode"] == "inference" and data["layout"] == "nchw"
    saved = tmp_results / "choices.json"
    assert main([*TUNE, "--json"]) == 0  # doubtful entries (2 rounds) are re-measured once ...
    data = json.loads(capsys.readouterr().out)
    assert main([*TUNE, "--save", str(saved)]) == 0  # ... then served from the cache
    out = capsys.readouterr().out
    assert "per-layer choice" in out and "speed-up" in out
    d = json.loads(saved.read_text())
    replay = swap(build_model("tiny"), layers=d["choices"], layout=d["layout"])
    assert choices(replay, op=None) == data["choices"]  # second run hit the cache: same choices


def test_cli_tune_train_mode(tmp_results, capsys):
    assert main([*TUNE, "--mode", "train", "--ops", "conv2d", "--algorithms", "im2col,mkldnn_packed",
                 "--no-cache", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mode"] == "train" and len(data["choices"]) == 7
    assert "mkldnn_packed" not in set(data["choices"].values())  # inference-only: not a training candidate


def test_cli_errors_are_clean(capsys):
    assert main(["algsel", "tune", "--model", "tiny", "--algorithms", "magic", "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert "unknown algorithm(s) 'magic'" in err and "im2col" in err
    assert main(["algsel", "tune", "--model", "tiny", "--layouts", "nhwc", "--no-cache"]) == 2
    assert "unknown layout" in capsys.readouterr().err
    assert main(["algsel", "tune", "--model", "tiny", "--ops", "conv3d", "--no-cache"]) == 2
    assert "unknown operator family" in capsys.readouterr().err
    r = subprocess.run([sys.executable, "-m", "xflow", "algsel", "tune", "--model", "nosuchnet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "unknown model" in r.stderr and "Traceback" not in r.stderr


def test_experiment_run_records(tmp_results):
    recs = run({"model": "tiny", "image": 16, "repeats": 2, "tune_repeats": 2, "e2e_rounds": 2,
                "algorithms": ["default", "im2col", "winograd_4x4"]})
    e2e = {(r["selection"], r["metric"]): r["value"] for r in recs if r["kind"] == "e2e"}
    assert {s for s, _ in e2e} == {"torch", "torch:channels_last", "autotuned", "uniform:default",
                                   "uniform:im2col", "uniform:winograd_4x4"}
    assert e2e[("torch", "speedup_vs_torch")] == 1.0
    assert all(e2e[(s, "max_rel_err")] < 1e-3 for s, _ in e2e)
    assert e2e[("torch", "output_std")] > 1e-3  # the outputs compared do not vanish
    errs = [r for r in recs if r["metric"] == "layer_max_rel_err"]
    assert errs and all(r["value"] < 1e-3 for r in errs)
    assert {r["op"] for r in recs if r["metric"] == "layer_median_ms"} == {"conv2d", "linear", "pool"}
    for r in (r for r in recs if r["kind"] == "e2e" and r["metric"] == "speedup_vs_torch" and r["verdict"] != "pruned"):
        assert r["speedup_lo"] <= r["value"] <= r["speedup_hi"]
    mem = {r["selection"]: r["value"] for r in recs if r["kind"] == "memory"}
    assert mem["uniform:winograd_4x4"] > mem["params:conv"] and mem["uniform:im2col"] == 0


def test_experiment_run_train_mode(tmp_results):
    recs = run({"model": "tiny", "image": 16, "repeats": 2, "tune_repeats": 2, "e2e_rounds": 2, "mode": "train",
                "algorithms": ["default", "im2col", "winograd_4x4"], "layer_errors": False, "layouts": ["nchw"]})
    e2e = {(r["selection"], r["metric"]): r["value"] for r in recs if r["kind"] == "e2e"}
    assert {s for s, _ in e2e} == {"torch", "autotuned"}
    assert e2e[("autotuned", "grad_max_rel_err")] < 1e-3 and e2e[("autotuned", "max_rel_err")] < 1e-3
    assert all(r["mode"] == "train" for r in recs)


def test_algorithms_flag_applies_to_every_family():
    """``--algorithms default`` must restrict every family (conv, linear, pool) to ``default`` — an A/A
    run of the tuner (pooling alone has genuinely faster algorithms that would otherwise switch)."""
    import pytest

    from xflow.algsel.cli import _per_family
    from xflow.errors import UnknownName

    ops = ["conv2d", "linear", "pool"]
    assert _per_family(["default"], ops) == {op: ["default"] for op in ops}
    mixed = _per_family(["im2col", "default"], ops)
    assert mixed["conv2d"] == ["im2col", "default"] and mixed["pool"] == ["default"] and mixed["linear"] == ["default"]
    with pytest.raises(UnknownName, match="nope"):
        _per_family(["nope"], ops)


def test_train_mode_numeric_check_sees_the_same_dropout_masks(tmp_results, monkeypatch):
    """VGG16 trains with dropout: unless every variant's checked forward draws the same masks, the
    training-tuned model looks wrong (max rel err 1.2, grad err 0.42 in a real VGG16 run) when it is
    exact (mutant: drop the reseeding)."""
    from torch import nn

    from xflow.algsel import experiment
    from xflow.algsel.models import TinyNet

    monkeypatch.setattr(experiment, "build_model",
                        lambda name, seed=0: nn.Sequential(TinyNet(), nn.Dropout(0.5)).eval())
    recs = run({"model": "tiny", "image": 16, "repeats": 2, "tune_repeats": 2, "e2e_rounds": 2, "mode": "train",
                "algorithms": ["default", "im2col"], "layer_errors": False, "layouts": ["nchw"]})
    e2e = {(r["selection"], r["metric"]): r["value"] for r in recs if r["kind"] == "e2e"}
    assert e2e[("autotuned", "max_rel_err")] < 1e-3 and e2e[("autotuned", "grad_max_rel_err")] < 1e-3
