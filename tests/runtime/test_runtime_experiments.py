"""zoo_latency experiment: records in long format, grid shapes."""
from __future__ import annotations

from xflow.runtime.experiments import QUICK_MODELS, zoo_latency, zoo_latency_grid


def test_zoo_latency_records(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path))
    recs = zoo_latency({"model": "nasrnn", "cfg": {"hidden": 16, "seq": 2}, "levels": ["disable", "all"],
                        "warmup": 1, "repeats": 3})
    metrics = {(r["level"], r["metric"]) for r in recs}
    assert ("all", "latency_median_ms") in metrics and ("all", "speedup_vs_disable") in metrics
    assert all(r["value"] > 0 for r in recs)
    assert {r["threads"] for r in recs} == {1}


def test_grid_profiles():
    quick = zoo_latency_grid(quick=True, devices=["cpu"])
    assert len(quick) == 2 * len(QUICK_MODELS) and all(c["levels"] == ["disable", "all"] for c in quick)
    full = zoo_latency_grid(quick=False, devices=["cpu"])
    assert len(full[0]["levels"]) == 4 and len(full) > len(quick)


def test_zoo_latency_speedup_carries_interval_and_verdict(tmp_path, monkeypatch):
    """The speed-up record has the measurement core's interval (around the value) and a verdict;
    quartiles bracket the median (what the zoo figure's error bars show)."""
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path))
    recs = zoo_latency({"model": "nasrnn", "cfg": {"hidden": 16, "seq": 2}, "levels": ["disable", "all"],
                        "warmup": 1, "repeats": 5})
    sp = {r["level"]: r for r in recs if r["metric"] == "speedup_vs_disable"}
    assert sp["disable"]["verdict"] == "baseline"
    a = sp["all"]
    assert a["verdict"] in ("faster", "slower", "same")
    assert a["ci_lo"] <= a["ratio"] <= a["ci_hi"]
    assert abs(a["speedup_lo"] * a["ci_hi"] - 1) < 1e-9 and abs(a["speedup_hi"] * a["ci_lo"] - 1) < 1e-9
    assert a["noise_floor"] >= 0
    med = [r for r in recs if r["metric"] == "latency_median_ms"]
    assert all(r["q25_ms"] <= r["value"] <= r["q75_ms"] for r in med)


def test_grid_overrides():
    g = zoo_latency_grid(quick=True, devices=["cpu"], models=["resnet18"], threads=[1, 4], levels=["all"],
                         repeats=7, warmup=0)
    assert [c["threads"] for c in g] == [1, 4]
    assert all(c["levels"] == ["all"] and c["repeats"] == 7 and c["warmup"] == 0 for c in g)
