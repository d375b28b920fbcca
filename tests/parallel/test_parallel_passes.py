"""Constant propagation and dead-code elimination remove exactly what they should."""
import numpy as np
from onnx import helper

from xflow.parallel.dataflow import from_onnx
from xflow.parallel.passes import eliminate_dead_code, propagate_constants

from .helpers import onnx_model, ort_run


def model_with_constants_and_dead_code():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 4)).astype(np.float32)
    nodes = [
        # constant subgraph: c = Constant; s = Shape(x) (static) ; w2 = w * c ; w3 = Relu(w2)  -> 4 folded
        helper.make_node("Constant", [], ["c"], value=helper.make_tensor("cv", 1, [1], [2.0])),
        helper.make_node("Mul", ["w", "c"], ["w2"]),
        helper.make_node("Relu", ["w2"], ["w3"]),
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Reshape", ["x", "s"], ["xr"]),
        helper.make_node("MatMul", ["xr", "w3"], ["y"]),
        # dead: nobody reads d1/d2 (2 dead nodes); 'unused' initializer is dead too
        helper.make_node("Sigmoid", ["x"], ["d1"]),
        helper.make_node("Tanh", ["d1"], ["d2"]),
    ]
    return onnx_model(nodes, [("x", [2, 4])], [("y", [2, 4])],
                      {"w": w, "unused": np.zeros(3, np.float32)})


def test_constant_propagation_counts():
    m = model_with_constants_and_dead_code()
    m2, n = propagate_constants(m)
    assert n == 4  # Constant, Mul, Relu, Shape
    assert [x.op_type for x in m2.graph.node] == ["Reshape", "MatMul", "Sigmoid", "Tanh"]
    x = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(ort_run(m2, {"x": x})[0], ort_run(m, {"x": x})[0], rtol=1e-6)


def test_dead_code_elimination_counts():
    m = model_with_constants_and_dead_code()
    m2, n, n_init = eliminate_dead_code(m)
    assert (n, n_init) == (2, 1)
    assert "Sigmoid" not in [x.op_type for x in m2.graph.node]
    m3, n, n_init = eliminate_dead_code(m2)
    assert (n, n_init) == (0, 0)  # idempotent


def test_from_onnx_records_pass_stats_and_graph_is_clean():
    g = from_onnx(model_with_constants_and_dead_code())
    assert g.pass_stats == {"const_nodes_folded": 4, "dead_nodes_removed": 2,
                            "dead_initializers_removed": 4,  # unused, w, and the folded c, w2
                            "identities_resolved": 0, "dropouts_removed": 0, "skipped_large": 0}
    assert [n.op for n in g.nodes] == ["Reshape", "MatMul"]
    assert g.preds[1] == [0]
