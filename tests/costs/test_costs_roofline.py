"""The one roofline: formula, profiles as data, the Split-of-Conv reorder term, names."""
from __future__ import annotations

from dataclasses import replace

import pytest

from xflow.costs import COST_MODELS, DeviceProfile, Roofline, make_cost_model, nominal
from xflow.costs.calibration import micro_models
from xflow.costs.profiles import InvalidProfile, read_profile, write_profile
from xflow.errors import UnknownName
from xflow.graphs.builders import build, make_matmul_chain


def _profile(flops, bw, ovh, **kw) -> DeviceProfile:
    return DeviceProfile("test", "cpu", flops, bw, ovh, **kw)


def test_conv_and_matmul_flops_follow_the_formula():
    rows = Roofline().breakdown(build("conv_bn_relu", batch=1, channels=3, out_channels=8, size=16, kernel=3))
    conv = next(r for r in rows if r["op"] == "Conv")
    assert conv["flops"] == pytest.approx(2 * 8 * 16 * 16 * 3 * 3 * 3)  # 2 |Y| C_in k k
    assert conv["bytes"] > 0
    rows = Roofline().breakdown(make_matmul_chain(batch=4, dims=(16, 32, 8)))
    assert [r["flops"] for r in rows] == [2 * 4 * 16 * 32, 2 * 4 * 32 * 8]


def test_roofline_takes_the_max_plus_overhead():
    model = build("conv_bn_relu")
    rows = Roofline().breakdown(model)
    flops, bytes_ = sum(r["flops"] for r in rows), sum(r["bytes"] for r in rows)
    n_ops = sum(1 for r in rows if r["flops"] or r["bytes"])
    assert Roofline(_profile(1e30, 1e30, 1e-3)).cost(model) == pytest.approx(n_ops * 1.0)  # 1 ms per op
    assert Roofline(_profile(1.0, 1e30, 0.0)).cost(model) == pytest.approx(flops * 1e3)
    assert Roofline(_profile(1e30, 1.0, 0.0)).cost(model) == pytest.approx(bytes_ * 1e3)


def test_threads_scale_compute_only():
    m = build("inception_like")
    p = _profile(1e9, 1e30, 0.0)
    one, two = Roofline(p).cost(m), Roofline(p, threads=2).cost(m)
    assert 0.5 * one < two < one
    mem = _profile(1e30, 1e6, 0.0)
    assert Roofline(mem, threads=2).cost(m) == pytest.approx(Roofline(mem).cost(m))


def test_cost_is_cached_by_key_and_callable():
    model = build("conv_bn_relu")
    cm = Roofline()
    a = cm.cost(model, "k")
    assert cm.cost(build("split_concat"), "k") == a  # looked up, not recomputed
    assert cm(model) == pytest.approx(a)


def test_split_reorder_penalises_a_merged_conv_split():
    mm = micro_models()
    merged, separate, cut = mm["merged"][0], mm["separate"][0], mm["merged"][2]
    plain = Roofline(nominal("cpu"))
    penalised = Roofline(replace(nominal("cpu"), split_reorder_s_per_byte=1e-9))
    assert penalised.cost(separate) == pytest.approx(plain.cost(separate))
    assert penalised.cost(merged) - plain.cost(merged) == pytest.approx(1e3 * 1e-9 * cut)


def test_reorder_term_sees_through_activations():
    import onnx
    from onnx import helper

    g = onnx.ModelProto()
    g.CopyFrom(micro_models()["merged"][0])
    nodes = list(g.graph.node)
    conv, split = nodes[0], nodes[1]
    split.input[0] = "mr"
    del g.graph.node[:]
    g.graph.node.extend([conv, helper.make_node("Relu", ["m"], ["mr"]), *nodes[1:]])
    plain = Roofline(nominal("cpu"))
    pen = Roofline(replace(nominal("cpu"), split_reorder_s_per_byte=1e-9))
    assert pen.cost(g) > plain.cost(g)


def test_nominal_profiles_are_data_and_files_round_trip(tmp_path):
    cpu, cuda = nominal("cpu"), nominal("cuda")
    assert cpu.name == "cpu-nominal" and cuda.flops_per_s > cpu.flops_per_s
    p = write_profile(replace(cpu, name="copy"), tmp_path / "p.json")
    assert read_profile(p) == replace(cpu, name="copy")
    p.write_text('{"version": 0}')
    with pytest.raises(InvalidProfile, match="version"):
        read_profile(p)
    p.write_text("{not json")
    with pytest.raises(InvalidProfile):
        read_profile(p)
    with pytest.raises(InvalidProfile, match="positive"):
        _profile(0.0, 1.0, 0.0)


def test_names_mean_one_thing():
    assert list(COST_MODELS) == ["nominal", "calibrated", "measured-ops", "measured", "ort", "ort-context", "torch"]
    assert make_cost_model("nominal").name == "nominal"
    with pytest.raises(UnknownName, match="nominal.*calibrated"):
        make_cost_model("analytic")
    with pytest.raises(UnknownName):
        make_cost_model("oracle")
    with pytest.raises(UnknownName):
        make_cost_model(42)


def test_callables_plug_in():
    from xflow.costs import FunctionCost

    model = build("split_concat")
    wrapped = make_cost_model(lambda g: float(len(g.nodes)))
    assert isinstance(wrapped, FunctionCost) and wrapped.cost(model) == len(model.graph.node)


def test_agreement_spearman_and_sign():
    from xflow.costs import agreement

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
