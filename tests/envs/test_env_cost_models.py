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

    times = {"calib_mm": 1.0, "calib_bw": 2.0, "calib_overhead": 0.064,
             "calib_separate": 1.0, "calib_merged": 1.5}

    def fake(model, **kw):
        calls.append(model.graph.name)
        return times[model.graph.name]

    monkeypatch.setattr(cost_models, "_measure", fake)
    p1 = cost_models.calibrate()
    assert len(calls) == 9 and p1.flops_per_s == pytest.approx(2 * 384 ** 3 / 1e-3)
    assert p1.op_overhead_s == pytest.approx(1e-6)
    assert p1.split_reorder_s_per_byte > 0  # merged measured 0.5 ms slower than separate
    p2 = cost_models.calibrate()
    assert p2 == p1 and len(calls) == 9
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


def test_split_reorder_penalises_a_merged_conv_split():
    from xflow.envs.cost_models import _merge_models

    mm = _merge_models()
    merged, separate = mm["merged"][0], mm["separate"][0]
    plain = AnalyticCost(DevicePeaks.nominal())
    from dataclasses import replace

    penalised = AnalyticCost(replace(DevicePeaks.nominal(), split_reorder_s_per_byte=1e-9))
    assert penalised.cost(separate) == pytest.approx(plain.cost(separate))
    extra = penalised.cost(merged) - plain.cost(merged)
    assert extra == pytest.approx(1e3 * 1e-9 * mm["merged"][2])


def test_agreement_spearman_and_sign():
    from xflow.envs.cost_models import agreement

    class ByName:
        def __init__(self, table, name):
            self.table, self.name = table, name

        def cost(self, model, key=None):
            return self.table[model]

    graphs = ["a", "b", "c", "d"]
    pred = ByName({"o": 1.0, "a": 0.5, "b": 0.8, "c": 1.2, "d": 2.0}, "p")
    same = ByName({"o": 2.0, "a": 1.0, "b": 1.5, "c": 2.5, "d": 3.0}, "m")
    flipped = ByName({"o": 1.0, "a": 2.0, "b": 1.2, "c": 0.8, "d": 0.5}, "f")
    a = agreement("o", graphs, pred, same)
    assert a["spearman"] == pytest.approx(1.0) and a["sign_agreement"] == 1.0 and a["n"] == 4
    b = agreement("o", graphs, pred, flipped)
    assert b["spearman"] == pytest.approx(-1.0) and b["sign_agreement"] == 0.0


def test_reorder_term_sees_through_activations():
    import onnx
    from onnx import helper

    from xflow.envs.cost_models import _merge_models

    merged = _merge_models()["merged"][0]
    g = onnx.ModelProto()
    g.CopyFrom(merged)
    nodes = list(g.graph.node)
    conv, split = nodes[0], nodes[1]
    relu = helper.make_node("Relu", ["m"], ["mr"])
    split.input[0] = "mr"
    del g.graph.node[:]
    g.graph.node.extend([conv, relu, *nodes[1:]])
    from dataclasses import replace

    plain = AnalyticCost(DevicePeaks.nominal())
    pen = AnalyticCost(replace(DevicePeaks.nominal(), split_reorder_s_per_byte=1e-9))
    assert pen.cost(g) > plain.cost(g)
