"""The algsel docs tables: target status logic, and builders on a small synthetic result set."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from xflow.algsel import report
from xflow.tables import save_result

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "algsel_latency.py"


def test_target_status():
    assert report.target_status(1.25, 1.21, 1.15) == "met, interval above target"
    assert report.target_status(1.18, 1.02, 1.15) == "met"
    assert report.target_status(1.18, 0.99, 1.15) == "not met"       # interval reaches 1
    assert report.target_status(1.10, 1.03, 1.15) == "interval excludes 1, below target"
    assert report.target_status(1.05, 1.01, 1.05) == "met"


def _e2e_rows(model, mode, sp, lo, hi, verdict):
    common = {"kind": "e2e", "model": model, "mode": mode, "batch": 1, "image": 224, "device_kind": "cpu",
              "noise_floor": 0.02, "foreign_cpu": 1.0, "n_repeats": 10}
    rows = []
    for sel, (v, l, h, ver) in {"torch": (1.0, 1.0, 1.0, "baseline"), "autotuned": (sp, lo, hi, verdict)}.items():
        for metric, val in (("e2e_ms", 100.0 / v), ("e2e_iqr_ms", 1.0), ("speedup_vs_torch", v),
                            ("max_rel_err", 1e-6), ("grad_max_rel_err", 1e-6)):
            rows.append({**common, "selection": sel, "metric": metric, "value": val, "speedup_lo": l,
                         "speedup_hi": h, "verdict": ver, "layout": "nchw"})
    return rows


def test_targets_and_train_tables_from_results(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_RESULTS", str(tmp_path))
    rows = (_e2e_rows("vgg16", "inference", 1.25, 1.2, 1.3, "faster")
            + _e2e_rows("resnet50", "inference", 1.03, 0.97, 1.08, "same")
            + _e2e_rows("vgg16", "train", 0.9, 0.85, 0.95, "slower"))
    save_result(rows, "algsel/e2e.csv")
    t = report.targets_table()
    lines = {ln.split("|")[1].strip() + ln.split("|")[2].strip(): ln for ln in t.splitlines()[2:]}
    assert "met, interval above target" in lines["vgg16inference"]
    assert "not met" in lines["resnet50inference"] and "1.03× [0.97, 1.08] same" in lines["resnet50inference"]
    assert lines["vgg16train"].rstrip(" |").endswith("not met")   # significantly slower in training
    tr = report.train_table()
    assert "0.90× [0.85, 0.95] slower" in tr


def _bench():
    spec = importlib.util.spec_from_file_location("algsel_latency", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_save_replaces_only_its_own_units(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_RESULTS", str(tmp_path))
    bench = _bench()
    a = _e2e_rows("vgg16", "inference", 1.2, 1.1, 1.3, "faster")
    b = _e2e_rows("resnet50", "inference", 1.1, 1.0, 1.2, "same")
    bench._save(a + b, "algsel", "cpu", 1)
    a2 = _e2e_rows("vgg16", "inference", 1.5, 1.4, 1.6, "faster")
    bench._save(a2, "algsel", "cpu", 1)                     # a later run of one model
    df = pd.read_csv(tmp_path / "algsel" / "e2e.csv")
    sp = df[(df.metric == "speedup_vs_torch") & (df.selection == "autotuned")].set_index("model").value
    assert sp.to_dict() == {"resnet50": pytest.approx(1.1), "vgg16": pytest.approx(1.5)}
    assert df.git_sha.notna().all() and len(df) == len(a2) + len(b)
    bench._save(a2, "algsel", "cpu", 1, fresh=True)         # --fresh: only this run's units remain
    assert set(pd.read_csv(tmp_path / "algsel" / "e2e.csv").model) == {"vgg16"}
