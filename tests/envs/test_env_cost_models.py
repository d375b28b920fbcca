"""Cost models: roofline arithmetic, calibration cache, measured-latency cache."""
from __future__ import annotations

import pytest

from xflow.envs import cost_models
from xflow.envs.cost_models import AnalyticCost, DevicePeaks, MeasuredCost, make_cost_model
from xflow.errors import UnknownName
from xflow.graphs.builders import build


def test_conv_flops_follow_the_formula():
    model = build("conv_bn_relu", batch=1, channels=3, out_channels=8, size=16, kernel=3)
    rows = AnalyticCost(DevicePeaks.nominal()).breakdown(model)
    conv = next(r for r in rows if r["op"] == "Conv")
    # 2 * |Y| * C_in * k*k with 'same' padding: Y = 1x8x16x16
    assert conv["flops"] == pytest.approx(2 * 8 * 16 * 16 * 3 * 3 * 3)
    assert conv["bytes"] > 0


def test_roofline_takes_the_max_plus_overhead():
    model = build("conv_bn_relu")
    rows = AnalyticCost().breakdown(model)
    flops = sum(r["flops"] for r in rows)
    bytes_ = sum(r["bytes"] for r in rows)
    n_ops = sum(1 for r in rows if r["flops"] or r["bytes"])
    overhead_only = AnalyticCost(DevicePeaks(1e30, 1e30, 1e-3)).cost(model)
    assert overhead_only == pytest.approx(n_ops * 1.0)  # 1 ms per (non-free) op
    compute_bound = AnalyticCost(DevicePeaks(1.0, 1e30, 0.0)).cost(model)
    assert compute_bound == pytest.approx(flops * 1e3)
    memory_bound = AnalyticCost(DevicePeaks(1e30, 1.0, 0.0)).cost(model)
    assert memory_bound == pytest.approx(bytes_ * 1e3)


def test_cost_is_cached_by_key():
    model = build("conv_bn_relu")
    cm = AnalyticCost()
    a = cm.cost(model, "k")
    assert cm.cost(build("split_concat"), "k") == a  # looked up, not recomputed


def test_calibration_is_measured_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path))
    calls = []
    real = cost_models._measure

    def fake(model, **kw):
        calls.append(model.graph.name)
        return {"calib_mm": 1.0, "calib_bw": 2.0, "calib_overhead": 0.064}[model.graph.name]

    monkeypatch.setattr(cost_models, "_measure", fake)
    p1 = cost_models.calibrate()
    assert len(calls) == 3 and p1.flops_per_s == pytest.approx(2 * 384 ** 3 / 1e-3)
    assert p1.op_overhead_s == pytest.approx(1e-6)
    p2 = cost_models.calibrate()
    assert p2 == p1 and len(calls) == 3
    assert list((tmp_path / "envs" / "calibration").glob("*.json"))
    monkeypatch.setattr(cost_models, "_measure", real)


def test_calibration_really_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path))
    peaks = cost_models.calibrate()
    assert peaks.flops_per_s > 1e8 and peaks.bytes_per_s > 1e8 and peaks.op_overhead_s > 0


def test_measured_cost_is_cached_by_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path))
    model = build("split_concat")
    n = []
    monkeypatch.setattr(cost_models, "_measure", lambda m, **kw: n.append(1) or 0.5)
    cm = MeasuredCost()
    assert cm.cost(model) == 0.5 and cm.cost(model) == 0.5 and len(n) == 1
    assert MeasuredCost().cost(model) == 0.5 and len(n) == 1  # from the disk cache


def test_measured_cost_runs_ort(tmp_path, monkeypatch):
    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path))
    ms = MeasuredCost(repeats=3, warmup=1, persist=False).cost(build("split_concat"))
    assert 0 < ms < 1000


def test_unknown_cost_model():
    with pytest.raises(UnknownName):
        make_cost_model("oracle")


def test_callables_plug_in_both_directions():
    from xflow.envs.cost_models import FunctionCost

    model = build("split_concat")
    wrapped = make_cost_model(lambda m: float(len(m.graph.node)))
    assert isinstance(wrapped, FunctionCost) and wrapped.cost(model) == len(model.graph.node)
    analytic = AnalyticCost()
    assert analytic(model) == pytest.approx(analytic.cost(model))  # usable as a search CostFn
    with pytest.raises(UnknownName):
        make_cost_model(42)
