"""load_model: each kind of bad input gets a typed error with a helpful message."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from xflow.errors import (
    DynamicShapeError,
    EmptyModelFile,
    InvalidModel,
    MalformedModel,
    ModelFileNotFound,
    ModelLoadError,
    ShapeMismatch,
    UnknownName,
    UnsupportedOperator,
    UnsupportedOpset,
    XflowError,
)
from xflow.graphs import Graph, TensorInfo, load_model
from xflow.graphs.builders import make_conv_bn_relu, make_qkv_matmuls


def _tiny(nodes, opset=17, inits=(), shape=(1, 4), domains=()):
    g = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, list(shape))], initializer=list(inits),
    )
    m = helper.make_model(
        g, opset_imports=[helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    )
    m.ir_version = 8
    return m


# -- reading ------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(ModelFileNotFound, match="does not exist") as e:
        load_model(tmp_path / "nope.onnx")
    assert "nope.onnx" in str(e.value)
    assert isinstance(e.value, FileNotFoundError)  # also catchable the standard way


def test_empty_file(tmp_path):
    p = tmp_path / "empty.onnx"
    p.write_bytes(b"")
    with pytest.raises(EmptyModelFile, match="empty.onnx.*is empty"):
        load_model(p)
    with pytest.raises(EmptyModelFile, match="empty"):
        load_model(b"")


def test_random_bytes():
    data = np.random.default_rng(0).bytes(2000)
    with pytest.raises(MalformedModel, match="not a valid ONNX protobuf"):
        load_model(data)


def test_truncated_model(tmp_path):
    data = make_conv_bn_relu().SerializeToString()
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(MalformedModel, match="truncated") as e:
        load_model(p)
    assert "cut.onnx" in str(e.value)


def test_parseable_bytes_without_graph():
    # b"\x08\x07" is a valid ModelProto wire encoding (ir_version=7) with no graph at all
    with pytest.raises(MalformedModel, match="holds no ONNX graph"):
        load_model(b"\x08\x07")


def test_text_is_not_a_model():
    with pytest.raises(ModelLoadError, match="truncated or not an ONNX model"):
        load_model(b"hello, I am not an ONNX model\n" * 10)


def test_directory_and_wrong_type(tmp_path):
    with pytest.raises(ModelLoadError, match="directory"):
        load_model(tmp_path)
    with pytest.raises(ModelLoadError, match="pass a path, bytes or onnx.ModelProto"):
        load_model(42)  # type: ignore[arg-type]


# -- validity -----------------------------------------------------------------------------
def test_checker_failure():
    m = _tiny([helper.make_node("Add", ["x", "undefined_tensor"], ["y"], name="bad_add")])
    with pytest.raises(InvalidModel, match="onnx.checker") as e:
        load_model(m)
    assert "undefined_tensor" in str(e.value)


def test_unknown_domain():
    m = _tiny([helper.make_node("Frobnicate", ["x"], ["y"], name="custom", domain="my.ops")],
              domains=["my.ops"])
    with pytest.raises(UnsupportedOperator, match="unknown operator domain 'my.ops'") as e:
        load_model(m)
    assert "custom" in str(e.value) and "Frobnicate" in str(e.value)


def test_unknown_default_domain_op():
    m = _tiny([helper.make_node("Frobnicate", ["x"], ["y"], name="typo")])
    with pytest.raises(UnsupportedOperator, match="'Frobnicate' is not defined in ONNX opset 17"):
        load_model(m)


def test_old_opset_is_converted():
    m = _tiny([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "r"], ["y"])],
              opset=6)
    g = load_model(m)
    assert g.opset >= 7
    assert [n.op_type for n in g.nodes] == ["Relu", "Add"]


def test_old_opset_unconvertible():
    m = _tiny([helper.make_node("Upsample", ["x"], ["y"], scales=[1.0, 2.0], mode="nearest")],
              opset=5)
    with pytest.raises(UnsupportedOpset, match="opset 5 .*older than 7") as e:
        load_model(m)
    assert "re-export" in str(e.value)


def test_too_new_opset():
    m = _tiny([helper.make_node("Relu", ["x"], ["y"])], opset=onnx.defs.onnx_opset_version() + 5)
    with pytest.raises(UnsupportedOpset, match="newer than the installed onnx"):
        load_model(m)


# -- dynamic shapes -----------------------------------------------------------------------
def test_dynamic_batch_names_input_and_suggests_shape():
    m = make_conv_bn_relu(batch="N")
    with pytest.raises(DynamicShapeError) as e:
        load_model(m)
    msg = str(e.value)
    assert "input 'x'" in msg and "'N' at axis 0" in msg
    assert "input_shapes={'x': (1, 3, 16, 16)}" in msg


def test_input_shapes_override_fixes_dynamic_dims():
    g = load_model(make_conv_bn_relu(batch="N"), input_shapes={"x": (2, 3, 16, 16)})
    assert g.tensors["x"].shape == (2, 3, 16, 16)
    assert g.tensors["y"].shape == (2, 8, 16, 16)
    assert g.tensors["y"].is_static and g.tensors["y"].numel == 2 * 8 * 16 * 16


def test_input_shapes_errors():
    m = make_conv_bn_relu(batch="N")
    with pytest.raises(UnknownName, match="not a graph input.*did you mean"):
        load_model(m, input_shapes={"xx": (1, 3, 16, 16)})
    with pytest.raises(ShapeMismatch, match="rank 2 but input 'x' has rank 4"):
        load_model(m, input_shapes={"x": (1, 3)})
    with pytest.raises(ShapeMismatch, match="conflicts with the model's fixed dimension 3 at axis 1"):
        load_model(m, input_shapes={"x": (1, 4, 16, 16)})


def test_allow_dynamic():
    g = load_model(make_conv_bn_relu(batch="N"), allow_dynamic=True)
    assert g.tensors["x"].shape[0] == "N" and not g.tensors["x"].is_static


def test_errors_are_xflow_errors():
    for exc in (ModelFileNotFound, EmptyModelFile, MalformedModel, InvalidModel, UnsupportedOpset,
                UnsupportedOperator, DynamicShapeError):
        assert issubclass(exc, XflowError)


# -- the Graph object ---------------------------------------------------------------------
def test_sources_agree(tmp_path):
    m = make_qkv_matmuls()
    p = tmp_path / "qkv.onnx"
    onnx.save(m, p)
    hashes = {load_model(s).content_hash for s in (m, m.SerializeToString(), p, str(p))}
    assert len(hashes) == 1


def test_load_does_not_mutate_input():
    m = make_conv_bn_relu()
    before = m.SerializeToString()
    load_model(m)
    assert m.SerializeToString() == before


def test_graph_index():
    g = load_model(make_qkv_matmuls())
    assert isinstance(g, Graph)
    assert g.inputs == ["x"] and g.outputs == ["y"]
    assert {n.name for n in g.consumers("x")} == {"q_proj", "k_proj", "v_proj"}
    assert g.producer("kT").name == "k_transpose"
    assert g.producer("x") is None and g.producer("Wq") is None
    assert g.tensors["kT"] == TensorInfo("kT", (1, 16, 8), np.dtype("float32"))
    assert g.initializers["Wq"].shape == (16, 16)
    assert g.is_initializer("Wq") and not g.is_initializer("x")
    assert [n.name for n in g.successors(g.node("k_bias"))] == ["k_transpose"]
    assert g.op_counts()["MatMul"] == 5
    with pytest.raises(UnknownName, match="did you mean"):
        g.node("q_prj")


def test_unnamed_nodes_get_unique_names():
    m = _tiny([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Relu", ["r"], ["y"])])
    g = load_model(m)
    names = [n.name for n in g.nodes]
    assert names == ["Relu_0", "Relu_1"]


def test_initializer_inputs_are_constants():
    w = numpy_helper.from_array(np.ones((4,), np.float32), "w")
    m = _tiny([helper.make_node("Add", ["x", "w"], ["y"])], inits=[w])
    m.graph.input.append(helper.make_tensor_value_info("w", onnx.TensorProto.FLOAT, [4]))
    g = load_model(m)
    assert g.inputs == ["x"] and "w" in g.initializers
