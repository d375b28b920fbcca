"""model_hash is stable under cosmetic changes and sensitive to computational ones."""
from __future__ import annotations

import onnx
from onnx import helper, numpy_helper

from xflow.graphs import load_model, model_hash
from xflow.graphs.builders import make_conv_bn_relu, make_matmul_chain, make_sibling_convs


def _copy(m: onnx.ModelProto) -> onnx.ModelProto:
    c = onnx.ModelProto()
    c.CopyFrom(m)
    return c


def test_deterministic_across_builds():
    assert model_hash(make_conv_bn_relu()) == model_hash(make_conv_bn_relu())


def test_ignores_metadata_and_names():
    a = make_conv_bn_relu()
    b = _copy(a)
    b.doc_string = "some docs"
    b.producer_name, b.producer_version = "someone", "9.9"
    b.model_version = 7
    b.graph.name = "renamed"
    b.graph.doc_string = "graph docs"
    onnx.helper.set_model_props(b, {"author": "me"})
    for i, node in enumerate(b.graph.node):
        node.name = f"n{i}"
        node.doc_string = "node docs"
    assert model_hash(a) == model_hash(b)


def test_ignores_intermediate_tensor_names():
    a = make_conv_bn_relu()
    b = _copy(a)
    for node in b.graph.node:  # conv_out -> renamed everywhere
        node.input[:] = ["renamed" if x == "conv_out" else x for x in node.input]
        node.output[:] = ["renamed" if x == "conv_out" else x for x in node.output]
    assert model_hash(a) == model_hash(b)


def test_ignores_initializer_storage_format():
    a = make_matmul_chain()
    b = _copy(a)
    arr = numpy_helper.to_array(b.graph.initializer[0])
    t = helper.make_tensor("W1", onnx.TensorProto.FLOAT, arr.shape, arr.flatten().tolist(), raw=False)
    b.graph.initializer[0].CopyFrom(t)
    assert b.graph.initializer[0].SerializeToString() != a.graph.initializer[0].SerializeToString()
    assert model_hash(a) == model_hash(b)


def test_loaded_graph_hash_matches_source():
    m = make_sibling_convs()
    assert load_model(m).content_hash == model_hash(m)


def test_sensitive_to_weights_attributes_ops_and_opset():
    base = model_hash(make_conv_bn_relu())
    assert model_hash(make_conv_bn_relu(seed=1)) != base  # weights
    assert model_hash(make_conv_bn_relu(kernel=5)) != base  # attribute + weight shape
    changed_op = make_conv_bn_relu()
    changed_op.graph.node[2].op_type = "Sigmoid"
    assert model_hash(changed_op) != base
    eps = make_conv_bn_relu()
    eps.graph.node[1].attribute[0].f = 1e-3
    assert model_hash(eps) != base
    opset = make_conv_bn_relu()
    opset.opset_import[0].version = 16
    assert model_hash(opset) != base


def test_sensitive_to_wiring():
    a = make_matmul_chain(dims=(8, 8, 8))
    b = _copy(a)
    b.graph.node[1].input[:] = ["h1", "W1"]  # use W1 twice instead of W2
    assert model_hash(a) != model_hash(b)


def test_sensitive_to_input_shape():
    assert model_hash(make_conv_bn_relu(batch=1)) != model_hash(make_conv_bn_relu(batch=2))
