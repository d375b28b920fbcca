"""TENSAT keeps its time budget over the whole search, and finds what TASO finds with the same rules.

The budget tests use a fake clock that advances one unit per read, so they count budget checks
instead of seconds (deterministic on a busy machine)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from xflow.costs import Roofline
from xflow.rewrites.generator.rule import generated_rules
from xflow.rewrites.verify import verify_rewrite
from tests.rewrites.test_rewrite_searches import _siblings


class _Ticks:
    """A clock that advances by one unit each time it is read."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def _cost():
    return Roofline("cpu", name="nominal")


def _fires(n: int = 2) -> onnx.ModelProto:
    """``n`` SqueezeNet fire modules: squeeze 1x1 conv + Relu, expand 1x1 and 3x3 convs + Relu each,
    Concat on channels. Rule ``Concat_1(Relu(a), Relu(b)) -> Relu(Concat_1(a, b))`` saves one Relu per module."""
    rng = np.random.default_rng(3)
    inits, nodes = [], []
    x, c_in = "x", 8
    for k in range(n):
        def w(name, shape):
            inits.append(numpy_helper.from_array((0.3 * rng.standard_normal(shape)).astype(np.float32), name))
            return name
        sq, e1, e3 = f"sq{k}", f"e1_{k}", f"e3_{k}"
        nodes += [helper.make_node("Conv", [x, w(f"Wsq{k}", (4, c_in, 1, 1))], [sq + "c"], kernel_shape=[1, 1]),
                  helper.make_node("Relu", [sq + "c"], [sq]),
                  helper.make_node("Conv", [sq, w(f"We1{k}", (8, 4, 1, 1))], [e1 + "c"], kernel_shape=[1, 1]),
                  helper.make_node("Relu", [e1 + "c"], [e1]),
                  helper.make_node("Conv", [sq, w(f"We3{k}", (8, 4, 3, 3))], [e3 + "c"], kernel_shape=[3, 3],
                                   pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [e3 + "c"], [e3]),
                  helper.make_node("Concat", [e1, e3], [f"cat{k}"], axis=1)]
        x, c_in = f"cat{k}", 16
    for i, nd in enumerate(nodes):
        nd.name = f"n{i}"
    g = helper.make_graph(nodes, "fires", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 8, 8])],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 16, 8, 8])], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def test_tensat_saturation_stops_at_its_share_of_the_budget():
    """Unbounded, the sibling graph saturates through several iterations; with a budget of 12 clock
    reads (6 for saturation) it must stop early on the time limit and the whole search must end
    within the budget's reads. Ignoring the budget runs every iteration."""
    from xflow.rewrites.searches.tensat import tensat_search

    m = _siblings(16)
    free = tensat_search(m, _cost(), iter_limit=6, time_limit_s=1e9, extract="greedy", clock=_Ticks()).stats
    assert free["iterations"] >= 3
    st = tensat_search(m, _cost(), iter_limit=6, time_limit_s=12, extract="greedy", clock=_Ticks()).stats
    assert st["stop_reason"] == "time limit"
    assert 1 <= st["iterations"] < free["iterations"]
    assert st["elapsed_s"] <= st["budget_s"]


def test_tensat_out_of_time_in_extraction_returns_the_input():
    """Anytime: saturation uses the whole share, extraction finds no time left, the input graph (always
    a valid extraction) comes back. With the time it finds the factoring (ignoring the extraction
    deadline would return that here too)."""
    from xflow.rewrites.searches.tensat import tensat_search

    m = _siblings(16)
    ok = tensat_search(m, _cost(), iter_limit=1, time_limit_s=1e9, extract="ilp", clock=_Ticks())
    assert ok.predicted_speedup > 1.2 and ok.stats["changed"]
    res = tensat_search(m, _cost(), iter_limit=1, time_limit_s=4, extract="ilp", clock=_Ticks())
    assert res.stats["iterations"] == 1
    assert res.stats["extracted"].startswith("original (out of time")
    assert not res.stats["changed"] and res.predicted_speedup == pytest.approx(1.0)
    assert res.stats["elapsed_s"] <= res.stats["budget_s"] + 1  # the one read that found the deadline passed


def test_tensat_ilp_time_limit_falls_back_to_greedy(monkeypatch):
    """An ILP that finds nothing in its time leaves the greedy extraction in place."""
    import xflow.rewrites.searches.tensat as T
    import xflow.rewrites.searches.tensat_extract as X

    monkeypatch.setattr(X, "ilp_extract", lambda *a, **k: (None, "Time limit reached (HiGHS Status 13)"))
    res = T.tensat_search(_siblings(16), _cost(), iter_limit=2, extract="ilp")
    assert res.stats["extracted"] == "greedy" and res.stats["ilp_status"].startswith("Time limit")
    assert res.predicted_speedup > 1.2


@pytest.mark.parametrize("extract", ["greedy", "ilp"])
def test_tensat_finds_at_least_tasos_gain_on_fire_modules(extract):
    """Same rules, same cost: on two fire modules TASO removes one Relu per module; TENSAT must find
    at least that gain. The e-node costs of the input term sum to the cost of the input (the cost
    model is the same), and what extraction predicts is what the rebuilt graph costs. (Blacklisting
    cycle e-nodes by serialized id dropped the useful Relu(Concat) e-nodes and returned the input.)"""
    from xflow.rewrites.searches.taso import taso_search
    from xflow.rewrites.searches.tensat import tensat_search

    m = _fires(2)
    rules = generated_rules()
    taso = taso_search(m, _cost(), rules=rules, budget=6, max_candidates=200)
    assert taso.predicted_speedup > 1.0 and len(taso.actions) >= 2
    res = tensat_search(m, _cost(), rules=rules, extract=extract, time_limit_s=120)
    st = res.stats
    assert st["original_cost"] == pytest.approx(_cost()(m), rel=1e-9)
    assert st["extracted_cost"] == pytest.approx(st["rebuilt_cost"], rel=1e-9)
    assert res.cost <= taso.cost * (1 + 1e-9)
    assert sum(n.op_type == "Relu" for n in res.model.graph.node) <= sum(n.op_type == "Relu" for n in taso.model.graph.node)
    verify_rewrite(m, res.model)
