"""Constant folding turns constant subgraphs into initializers without changing outputs."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from xflow.graphs import fold_constants, load_model
from xflow.graphs.builders import make_folding_example


def _run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _model(nodes, inputs, outputs, inits=()):
    m = helper.make_model(helper.make_graph(nodes, "t", inputs, outputs, initializer=list(inits)),
                          opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def test_constant_identity_weight_becomes_initializer():
    m = make_folding_example()
    g = load_model(m)
    assert [n.op_type for n in g.nodes] == ["Conv", "Add", "Relu"]
    w_const = numpy_helper.to_array(m.graph.node[0].attribute[0].t)
    w_name = g.node("conv").inputs[1].name
    assert w_name == "w_const"  # Identity is resolved by name: the Conv reads the folded Constant
    np.testing.assert_array_equal(g.initializers[w_name], w_const)
    np.testing.assert_allclose(g.initializers["bias"], np.full((1, 4, 1, 1), 0.5, np.float32))
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    (before,), (after,) = _run(m, {"x": x}), _run(g.model, {"x": x})
    np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-6)


def test_fold_does_not_mutate_and_is_optional():
    m = make_folding_example()
    before = m.SerializeToString()
    folded = fold_constants(m)
    assert m.SerializeToString() == before
    assert len(folded.graph.node) == 3
    assert len(load_model(m, fold=False).nodes) == len(m.graph.node)


def test_shape_of_static_tensor_is_folded():
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3, 4])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [6, 4])
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Shape", ["r"], ["s"], name="shape", start=1),       # [3, 4]
        helper.make_node("ReduceProd", ["s"], ["p"], name="prod", keepdims=1),  # [12]
        helper.make_node("Constant", [], ["m1"], name="m1",
                         value=numpy_helper.from_array(np.array([-1], np.int64))),
        helper.make_node("Div", ["p", "s"], ["p2"], name="div"),                # [4, 3]
        helper.make_node("Slice", ["p2", "zero", "one"], ["last"], name="slice"),  # [4]
        helper.make_node("Concat", ["m1", "last"], ["target"], name="cat", axis=0),  # [-1, 4]
        helper.make_node("Reshape", ["r", "target"], ["y"], name="reshape"),
    ]
    inits = [numpy_helper.from_array(np.array([0], np.int64), "zero"),
             numpy_helper.from_array(np.array([1], np.int64), "one")]
    m = _model(nodes, [x], [y], inits)
    g = load_model(m)
    assert [n.op_type for n in g.nodes] == ["Relu", "Reshape"]
    np.testing.assert_array_equal(g.initializers["target"], [-1, 4])
    assert "zero" not in g.initializers  # dead initializers are dropped
    xv = np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(_run(g.model, {"x": xv})[0], _run(m, {"x": xv})[0])


def test_folded_graph_output_is_still_produced():
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])
    outs = [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2]),
            helper.make_tensor_value_info("c", onnx.TensorProto.FLOAT, [2])]
    nodes = [
        helper.make_node("Constant", [], ["k"], name="k", value=numpy_helper.from_array(
            np.array([1.0, 2.0], np.float32))),
        helper.make_node("Neg", ["k"], ["c"], name="neg"),
        helper.make_node("Add", ["x", "k"], ["y"], name="add"),
    ]
    m = _model(nodes, [x], outs)
    g = load_model(m)
    assert g.producer("c") is not None and g.producer("c").op_type == "Constant"
    xv = np.array([3.0, 4.0], np.float32)
    for a, b in zip(_run(g.model, {"x": xv}), _run(m, {"x": xv})):
        np.testing.assert_array_equal(a, b)


def test_random_ops_are_not_folded():
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [3])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [3])
    nodes = [helper.make_node("RandomUniform", [], ["r"], name="rand", shape=[3], dtype=1),
             helper.make_node("Add", ["x", "r"], ["y"], name="add")]
    g = load_model(_model(nodes, [x], [y]))
    assert [n.op_type for n in g.nodes] == ["RandomUniform", "Add"]


@pytest.mark.parametrize("max_elements", [10])
def test_large_expansions_are_kept(max_elements):
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [64, 64])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [64, 64])
    nodes = [
        helper.make_node("ConstantOfShape", ["shape"], ["z"], name="zeros"),
        helper.make_node("Add", ["x", "z"], ["y"], name="add"),
    ]
    m = _model(nodes, [x], [y], [numpy_helper.from_array(np.array([64, 64], np.int64), "shape")])
    kept = fold_constants(m, max_elements=max_elements)
    assert [n.op_type for n in kept.graph.node] == ["ConstantOfShape", "Add"]
    folded = fold_constants(m)
    assert [n.op_type for n in folded.graph.node] == ["Add"]


def test_identity_shared_weights_are_not_duplicated():
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 2])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 2])
    w_out = helper.make_tensor_value_info("w_copy", onnx.TensorProto.FLOAT, [2, 2])
    w = numpy_helper.from_array(np.eye(2, dtype=np.float32) * 3, "W")
    nodes = [helper.make_node("Identity", ["W"], ["w1"], name="id1"),
             helper.make_node("Identity", ["w1"], ["w2"], name="id2"),
             helper.make_node("Identity", ["W"], ["w_copy"], name="id3"),
             helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
             helper.make_node("MatMul", ["h", "w2"], ["y"], name="mm2")]
    m = _model(nodes, [x], [y, w_out], [w])
    g = load_model(m)
    assert list(g.initializers) == ["W"]
    assert [n.op_type for n in g.nodes] == ["Identity", "MatMul", "MatMul"]  # w_copy still output
    assert g.node("mm2").inputs[1].name == "W"
    xv = np.ones((2, 2), np.float32)
    for a, b in zip(_run(g.model, {"x": xv}), _run(m, {"x": xv})):
        np.testing.assert_array_equal(a, b)
