"""``benchmarks/weight_working_set.py`` and the torch path of ``benchmarks/cost_fidelity.py``: the
variants keep the model's outputs and change the weights held as each one claims."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def ws():
    return _load("weight_working_set")


def _run(model: onnx.ModelProto, feeds):
    from xflow.runtime.session import make_session

    return make_session(model, level="disable").run(None, feeds)


def _shared_weight_model(identical_copy: bool = False) -> onnx.ModelProto:
    """y = relu(x·W)·W' where W' is W itself, or a second initializer with W's values."""
    w = (np.abs(np.random.default_rng(0).standard_normal((4, 4))) + 0.1).astype(np.float32)  # relu keeps it
    inits = [numpy_helper.from_array(w, "W")]
    second = "W"
    if identical_copy:
        inits.append(numpy_helper.from_array(w.copy(), "W2"))
        second = "W2"
    nodes = [helper.make_node("MatMul", ["x", "W"], ["a"], name="m0"), helper.make_node("Relu", ["a"], ["r"], name="r"),
             helper.make_node("MatMul", ["r", second], ["y"], name="m1")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_duplicate_weights_adds_a_copy_and_keeps_outputs_and_input(ws):
    m = _shared_weight_model()
    before = m.SerializeToString()
    dup = ws.duplicate_weights(m, {"m1"})
    assert m.SerializeToString() == before  # the input model is not modified
    assert ws.weight_bytes(dup) == 2 * ws.weight_bytes(m) == 2 * 64
    assert [n.input[1] for n in dup.graph.node if n.op_type == "MatMul"][0] == "W"  # only m1 is rewired
    feeds = {"x": np.arange(1, 5, dtype=np.float32).reshape(1, 4)}
    ref = _run(m, feeds)[0]
    assert np.abs(ref).max() > 0.1 and np.allclose(_run(dup, feeds)[0], ref)


def test_share_identical_weights_merges_equal_initializers(ws):
    m = _shared_weight_model(identical_copy=True)
    shared = ws.share_identical_weights(m)
    assert [t.name for t in shared.graph.initializer] == ["W"]
    assert ws.weight_bytes(shared) == ws.weight_bytes(m) // 2
    feeds = {"x": np.arange(1, 5, dtype=np.float32).reshape(1, 4)}
    assert np.allclose(_run(shared, feeds)[0], _run(m, feeds)[0])


def test_nasrnn_variants_keep_outputs_and_differ_in_weights(ws):
    from xflow.graphs.model_ids import resolve_graph
    from xflow.runtime.session import random_inputs

    variants, sites = ws.build_variants(resolve_graph("zoo:nasrnn?hidden=8&seq=3"))
    assert sites["rewrite-all"] >= 2 and sites["rewrite-1"] == 1
    feeds = random_inputs(variants["original"], seed=0)
    ref = _run(variants["original"], feeds)[0]
    assert np.abs(ref).max() > 1e-3
    for name, m in variants.items():
        assert np.allclose(_run(m, feeds)[0], ref, atol=1e-5), name
    held = {k: ws.weight_bytes(m) for k, m in variants.items()}
    assert held["dup-1"] > held["original"] and held["rewrite-1"] > held["original"]
    assert held["rewrite-shared"] < held["rewrite-all"]  # the merged copies are held once
    n_mm = {k: sum(n.op_type == "MatMul" for n in m.graph.node) for k, m in variants.items()}
    assert n_mm["dup-1"] == n_mm["original"] and n_mm["rewrite-all"] == n_mm["original"] - sites["rewrite-all"]


def test_node_order_variants_move_only_the_order(ws):
    """``rewrite-1-placed`` puts the new nodes where the replaced ones were; ``original-displaced``
    has the original's nodes, the site's scheduled late. Kills: placing new nodes at the end, or a
    reorder that changes outputs."""
    from xflow.graphs.model_ids import resolve_graph
    from xflow.runtime.session import random_inputs

    variants, _ = ws.build_variants(resolve_graph("zoo:nasrnn?hidden=8&seq=3"))
    orig, rw, placed, disp = (variants[k] for k in ("original", "rewrite-1", "rewrite-1-placed", "original-displaced"))
    order = {n.name: i for i, n in enumerate(orig.graph.node)}

    def kept(m):
        return [n.name for n in m.graph.node if n.name in order]

    assert sorted(kept(placed), key=order.get) == kept(placed)  # kept nodes in the original's order
    new = [i for i, n in enumerate(placed.graph.node) if n.name not in order]
    site = {n.name for n in orig.graph.node} - {n.name for n in rw.graph.node}
    first_site = min(order[s] for s in site)
    assert new and max(new) <= first_site + len(new) + len(site)  # near the replaced nodes, not at the end
    assert [n.name for n in rw.graph.node] != [n.name for n in placed.graph.node]
    assert sorted(n.name for n in disp.graph.node) == sorted(order) and kept(disp) != kept(orig)
    feeds = random_inputs(orig, seed=0)
    ref = _run(orig, feeds)[0]
    for m in (placed, disp):
        assert np.allclose(_run(m, feeds)[0], ref, atol=1e-5)


def test_fidelity_measures_on_the_torch_backend():
    """Smoke test of the torch path (2 rounds, no timing asserted): the original is the baseline."""
    from xflow.graphs.model_ids import resolve_graph

    fid = _load("cost_fidelity")
    pool = fid.draw_graphs(resolve_graph("zoo:nasrnn?hidden=8&seq=3"), 2, seed=0)
    out = fid.measure_graphs(pool, chunk=2, rounds=2, warmup=0, seed=0, backend="torch")
    assert len(out) == len(pool) == 3 and out[0]["ratio"] == 1.0
    assert all(o["rounds"] >= 2 and np.isfinite(o["ratio"]) for o in out[1:])
