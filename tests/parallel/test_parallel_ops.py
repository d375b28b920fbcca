"""Every supported ONNX operator: generated torch code equals ONNX Runtime; clear errors otherwise."""
import numpy as np
import pytest
from onnx import helper

from xflow.errors import DynamicShapeError, MalformedModel, ModelFileNotFound, UnsupportedOperator
from xflow.parallel.api import compile_model
from xflow.parallel.dataflow import from_onnx

from .helpers import onnx_model, ort_run

R = np.random.default_rng(0)


def f32(*s):
    return R.standard_normal(s).astype(np.float32)


CASES = {
    "conv_asym_pad_group": ([helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[0, 1, 1, 2], strides=[2, 1],
                                              group=2)], [4, 1, 3, 3], {"w": f32(4, 1, 3, 3), "b": f32(4)}),
    "maxpool_ceil": ([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)],
                     None, {}),
    "maxpool_pad": ([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])], None, {}),
    "avgpool_excl": ([helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
                     None, {}),
    "avgpool_incl": ([helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2],
                                       count_include_pad=1)], None, {}),
    "gap": ([helper.make_node("GlobalAveragePool", ["x"], ["y"])], None, {}),
    "concat_add_mul": ([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Sigmoid", ["x"], ["s"]),
                        helper.make_node("Add", ["r", "s"], ["a"]), helper.make_node("Mul", ["a", "k"], ["m"]),
                        helper.make_node("Concat", ["m", "x"], ["y"], axis=1)], None, {"k": f32(1, 2, 1, 1)}),
    "bn_clip": ([helper.make_node("BatchNormalization", ["x", "sc", "bi", "me", "va"], ["b"], epsilon=1e-3),
                 helper.make_node("Clip", ["b", "lo", "hi"], ["y"])], None,
                {"sc": f32(2), "bi": f32(2), "me": f32(2), "va": np.abs(f32(2)) + 0.5,
                 "lo": np.array(-0.5, np.float32), "hi": np.array(0.7, np.float32)}),
    "pad_split_identity": ([helper.make_node("Pad", ["x", "p"], ["pd"], mode="reflect"),
                            helper.make_node("Split", ["pd", "sp"], ["a", "b"], axis=1),
                            helper.make_node("Dropout", ["a"], ["da"]), helper.make_node("Identity", ["b"], ["ib"]),
                            helper.make_node("Sub", ["da", "ib"], ["y"])], None,
                           {"p": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64), "sp": np.array([1, 1], np.int64)}),
    "flatten_gemm_softmax": ([helper.make_node("Flatten", ["x"], ["f"], axis=1),
                              helper.make_node("Gemm", ["f", "gw", "gb"], ["g"], transB=1),
                              helper.make_node("Gemm", ["g", "gw2"], ["g2"], alpha=0.5),
                              helper.make_node("Softmax", ["g2"], ["y"], axis=1)], None,
                             {"gw": f32(5, 50), "gb": f32(5), "gw2": f32(5, 3)}),
    "reshape_matmul": ([helper.make_node("Reshape", ["x", "shp"], ["r"]),
                        helper.make_node("MatMul", ["r", "mw"], ["y"])], None,
                       {"shp": np.array([0, -1, 5], np.int64), "mw": f32(5, 4)}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_operator_matches_onnxruntime(case):
    nodes, _, inits = CASES[case]
    x = f32(1, 2, 5, 5)
    m = onnx_model(nodes, [("x", [1, 2, 5, 5])], [("y", None)], inits)
    ref = ort_run(m, {"x": x})[0]
    res = compile_model(m, mode="serial", cost="analytic")
    y = res.load()(__import__("torch").from_numpy(x))
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5, atol=1e-5)


def test_unsupported_operator_is_named():
    m = onnx_model([helper.make_node("Erf", ["x"], ["y"])], [("x", [1, 2])], [("y", [1, 2])])
    with pytest.raises(UnsupportedOperator, match="Erf"):
        compile_model(m, cost="analytic")


def test_bad_inputs_raise_typed_errors(tmp_path):
    with pytest.raises(ModelFileNotFound):
        from_onnx(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage-not-onnx" * 3)
    with pytest.raises(MalformedModel):
        from_onnx(bad)
    dyn = onnx_model([helper.make_node("Relu", ["x"], ["y"])], [("x", ["N", 3])], [("y", ["N", 3])])
    with pytest.raises(DynamicShapeError):
        from_onnx(dyn)


def test_dynamic_batch_fixed_by_input_shapes():
    dyn = onnx_model([helper.make_node("Relu", ["x"], ["y"])], [("x", ["N", 3])], [("y", ["N", 3])])
    res = compile_model(dyn, cost="analytic", input_shapes={"x": [2, 3]})
    x = f32(2, 3)
    np.testing.assert_allclose(res.load()(__import__("torch").from_numpy(x)).numpy(), np.maximum(x, 0))
