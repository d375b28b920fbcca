"""Code generation goes through the shared torch backend: its operator coverage (tested one by one
against ONNX Runtime in tests/runtime/test_backend_ops.py) is the parallelizer's; clear errors otherwise."""
import numpy as np
import pytest
import torch
from onnx import helper

from xflow.errors import DynamicShapeError, MalformedModel, ModelFileNotFound, UnsupportedOperator
from xflow.parallel import supported_ops
from xflow.parallel.api import compile_model
from xflow.parallel.dataflow import from_onnx
from xflow.parallel.planner import PlanConfig
from xflow.runtime.backend_ops import supported_ops as backend_ops


from .helpers import onnx_model, ort_run

R = np.random.default_rng(0)
N = helper.make_node


def f32(*s):
    return np.asarray(R.standard_normal(s), dtype=np.float32)


def test_parallel_supports_exactly_the_backend_ops():
    assert supported_ops() == backend_ops()
    for op in ("LRN", "Sum", "LayerNormalization", "Erf", "Gather", "Expand", "Where", "Cast", "Slice",
               "ReduceMean", "Pow", "Sqrt", "Div", "Squeeze", "Unsqueeze", "Transpose", "HardSigmoid",
               "HardSwish", "LeakyRelu"):
        assert op in supported_ops(), op


def test_branches_of_formerly_refused_ops_run_in_parallel():
    """LRN / Sum / LayerNormalization / Erf / Gather branches, split over two workers, match ORT."""
    nodes = [N("LRN", ["x"], ["a"], size=3), N("Relu", ["a"], ["a2"]),
             N("Sum", ["x", "x"], ["b"]), N("Erf", ["b"], ["b2"]),
             N("Transpose", ["x"], ["t"], perm=[0, 1, 3, 2]), N("LeakyRelu", ["t"], ["t2"], alpha=0.1),
             N("HardSwish", ["x"], ["h"]), N("HardSigmoid", ["h"], ["h2"]),
             N("Add", ["a2", "b2"], ["ab"]), N("Add", ["t2", "h2"], ["th"]), N("Div", ["ab", "k"], ["d"]),
             N("Sub", ["d", "th"], ["y"])]
    m = onnx_model(nodes, [("x", [1, 3, 8, 8])], [("y", None)], {"k": np.float32(1.5)})
    x = f32(1, 3, 8, 8)
    ref = ort_run(m, {"x": x})[0]
    assert ref.std() > 0.1
    res = compile_model(m, cost="analytic",
                        config=PlanConfig(workers=2, mode="branch", min_gain=0.0, sync_us=0.0, fork_us=0.0))
    assert res.summary()["parallel_stages"] >= 1
    model = res.load()
    np.testing.assert_allclose(model(torch.from_numpy(x)).numpy(), ref, rtol=1e-4, atol=1e-5)
    model.close()


def test_unsupported_operator_is_named():
    m = onnx_model([N("NonZero", ["x"], ["y"])], [("x", [1, 2])], [("y", None, np.int64)])
    with pytest.raises(UnsupportedOperator, match="NonZero"):
        compile_model(m, cost="analytic")


def test_bad_inputs_raise_typed_errors(tmp_path):
    with pytest.raises(ModelFileNotFound):
        from_onnx(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage-not-onnx" * 3)
    with pytest.raises(MalformedModel):
        from_onnx(bad)
    dyn = onnx_model([N("Relu", ["x"], ["y"])], [("x", ["N", 3])], [("y", ["N", 3])])
    with pytest.raises(DynamicShapeError):
        from_onnx(dyn)


def test_dynamic_batch_fixed_by_input_shapes():
    dyn = onnx_model([N("Relu", ["x"], ["y"])], [("x", ["N", 3])], [("y", ["N", 3])])
    res = compile_model(dyn, cost="analytic", input_shapes={"x": [2, 3]})
    x = f32(2, 3)
    np.testing.assert_allclose(res.load()(torch.from_numpy(x)).numpy(), np.maximum(x, 0))
