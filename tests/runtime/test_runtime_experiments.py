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
