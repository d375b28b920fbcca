"""``xflow algsel`` CLI (in-process through ``xflow.cli.main``, one real subprocess) and ``run``."""
from __future__ import annotations

import json
import subprocess
import sys

from xflow.algsel import build_model, choices, run, swap_conv2d
from xflow.cli import main

TUNE = ["algsel", "tune", "--model", "tiny", "--image", "16", "--repeats", "2", "--e2e-repeats", "2"]


def test_cli_list(capsys):
    assert main(["algsel", "list", "--json"]) == 0
    assert "winograd_4x4" in {a["name"] for a in json.loads(capsys.readouterr().out)["algorithms"]}


def test_cli_tune_json_text_and_replay(tmp_results, capsys):
    assert main([*TUNE, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["choices"]) == 7 and data["e2e"]["torch"]["median_ms"] > 0
    saved = tmp_results / "choices.json"
    assert main([*TUNE, "--json"]) == 0  # doubtful entries (2 rounds) are re-measured once ...
    data = json.loads(capsys.readouterr().out)
    assert main([*TUNE, "--save", str(saved)]) == 0  # ... then served from the cache
    out = capsys.readouterr().out
    assert "per-layer choice" in out and "speed-up" in out
    replay = swap_conv2d(build_model("tiny"), json.loads(saved.read_text())["choices"])
    assert choices(replay) == data["choices"]  # second run hit the cache: same choices


def test_cli_errors_are_clean(capsys):
    assert main(["algsel", "tune", "--model", "tiny", "--algorithms", "magic", "--no-cache"]) == 2
    assert "unknown convolution algorithm" in capsys.readouterr().err
    r = subprocess.run([sys.executable, "-m", "xflow", "algsel", "tune", "--model", "nosuchnet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "unknown model" in r.stderr and "Traceback" not in r.stderr


def test_experiment_run_records(tmp_results):
    recs = run({"model": "tiny", "image": 16, "repeats": 2, "tune_repeats": 2,
                "algorithms": ["default", "im2col", "winograd_4x4"]})
    e2e = {(r["selection"], r["metric"]): r["value"] for r in recs if r["kind"] == "e2e"}
    assert {s for s, _ in e2e} == {"torch", "autotuned", "uniform:default", "uniform:im2col", "uniform:winograd_4x4"}
    assert e2e[("torch", "speedup_vs_torch")] == 1.0
    assert all(e2e[(s, "max_rel_err")] < 1e-3 for s, _ in e2e)
    errs = [r for r in recs if r["metric"] == "layer_max_rel_err"]
    assert errs and all(r["value"] < 1e-3 for r in errs)
    assert any(r["metric"] == "layer_median_ms" for r in recs)
    for r in (r for r in recs if r["kind"] == "e2e" and r["metric"] == "speedup_vs_torch" and r["verdict"] != "pruned"):
        assert r["speedup_lo"] <= r["value"] <= r["speedup_hi"]
