"""``xflow algsel`` CLI and the experiment ``run(config)``."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from xflow.algsel import run


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "xflow", "algsel", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_cli_list():
    r = _cli("list", "--json")
    assert r.returncode == 0, r.stderr
    assert "winograd_4x4" in {a["name"] for a in json.loads(r.stdout)["algorithms"]}


def test_cli_tune_json_and_text(tmp_results):
    env = {**os.environ, "XFLOW_CACHE": str(tmp_results / "cache")}
    r = _cli("tune", "--model", "tiny", "--image", "16", "--repeats", "1", "--e2e-repeats", "1", "--json", env=env)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert len(data["choices"]) == 7 and data["e2e"]["torch"]["median_ms"] > 0
    saved = tmp_results / "choices.json"
    r = _cli("tune", "--model", "tiny", "--image", "16", "--repeats", "1", "--e2e-repeats", "1",
             "--save", str(saved), env=env)
    assert r.returncode == 0 and "per-layer choice" in r.stdout and "speed-up" in r.stdout
    from xflow.algsel import build_model, choices, swap_conv2d

    replay = swap_conv2d(build_model("tiny"), json.loads(saved.read_text())["choices"])
    assert choices(replay) == data["choices"]


def test_cli_errors_are_clean():
    r = _cli("tune", "--model", "nosuchnet")
    assert r.returncode == 2 and "unknown model" in r.stderr and "Traceback" not in r.stderr
    r = _cli("tune", "--model", "tiny", "--algorithms", "magic", "--no-cache")
    assert r.returncode == 2 and "unknown convolution algorithm" in r.stderr


def test_experiment_run_records(tmp_results):
    recs = run({"model": "tiny", "image": 16, "repeats": 1, "tune_repeats": 1,
                "algorithms": ["default", "im2col", "winograd_4x4"]})
    e2e = {(r["selection"], r["metric"]): r["value"] for r in recs if r["kind"] == "e2e"}
    assert {s for s, _ in e2e} == {"torch", "autotuned", "uniform:default", "uniform:im2col", "uniform:winograd_4x4"}
    assert e2e[("torch", "speedup_vs_torch")] == 1.0
    assert all(e2e[(s, "max_rel_err")] < 1e-3 for s, _ in e2e)
    errs = [r for r in recs if r["metric"] == "layer_max_rel_err"]
    assert errs and all(r["value"] < 1e-3 for r in errs)
    assert any(r["metric"] == "layer_ms" for r in recs)
