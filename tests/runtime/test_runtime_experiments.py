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


def test_zoo_latency_median_rows_carry_quartiles(tmp_path, monkeypatch):
    """The zoo figure's error bars are the quartiles of the rounds: they bracket the median."""
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path))
    recs = zoo_latency({"model": "nasrnn", "cfg": {"hidden": 16, "seq": 2}, "levels": ["disable", "all"],
                        "warmup": 1, "repeats": 5})
    med = [r for r in recs if r["metric"] == "latency_median_ms"]
    assert len(med) == 2 and all(r["q25_ms"] <= r["value"] <= r["q75_ms"] for r in med)
    iqr = {r["level"]: r["value"] for r in recs if r["metric"] == "latency_iqr_ms"}
    assert all(abs((r["q75_ms"] - r["q25_ms"]) - iqr[r["level"]]) < 1e-9 for r in med)


def test_grid_overrides():
    g = zoo_latency_grid(quick=True, devices=["cpu"], models=["resnet18"], threads=[1, 4], levels=["all"],
                         repeats=7, warmup=0)
    assert [c["threads"] for c in g] == [1, 4]
    assert all(c["levels"] == ["all"] and c["repeats"] == 7 and c["warmup"] == 0 for c in g)
