"""Session factory and random inputs."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from xflow.errors import DeviceUnavailable, DynamicShapeError, MalformedModel, ModelFileNotFound, UnknownName
from xflow.graphs.builders import make_conv_bn_relu
from xflow.runtime import LEVELS, available_devices, make_session, random_inputs


def _add_model(shape=(2, 3), dtype=TensorProto.FLOAT) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", dtype, list(shape))
    y = helper.make_tensor_value_info("y", dtype, list(shape))
    g = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "add", [x], [y])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("level", LEVELS)
def test_every_level_runs_and_agrees(level):
    m = make_conv_bn_relu()
    feed = random_inputs(m, seed=1)
    ref = make_session(m, level="disable").run(None, feed)[0]
    out = make_session(m, level=level, intra_threads=1).run(None, feed)[0]
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


def test_accepts_bytes_path_and_proto(tmp_path):
    m = _add_model()
    p = tmp_path / "m.onnx"
    onnx.save(m, p)
    for src in (m, m.SerializeToString(), p, str(p)):
        (y,) = make_session(src).run(None, {"x": np.ones((2, 3), np.float32)})
        assert np.all(y == 2)


def test_bad_settings_are_typed_errors(tmp_path):
    m = _add_model()
    with pytest.raises(UnknownName, match="optimization level"):
        make_session(m, level="turbo")
    with pytest.raises(UnknownName, match="execution mode"):
        make_session(m, mode="async")
    with pytest.raises(ModelFileNotFound):
        make_session(tmp_path / "missing.onnx")
    bad = tmp_path / "rand.onnx"
    bad.write_bytes(np.random.default_rng(0).bytes(512))
    with pytest.raises(MalformedModel):
        make_session(bad)


def test_cuda_unavailable_is_a_typed_error():
    if "cuda" in available_devices():
        pytest.skip("CUDA provider present")
    with pytest.raises(DeviceUnavailable, match="cuda"):
        make_session(_add_model(), device="cuda")


def test_random_inputs_follow_declared_types_and_are_seeded():
    m = _add_model(dtype=TensorProto.INT64)
    a, b = random_inputs(m, seed=3), random_inputs(m, seed=3)
    assert a["x"].dtype == np.int64 and a["x"].shape == (2, 3)
    assert np.array_equal(a["x"], b["x"])
    f = random_inputs(_add_model(), seed=0)["x"]
    assert f.dtype == np.float32 and not np.array_equal(f, random_inputs(_add_model(), seed=1)["x"])


def test_random_inputs_name_a_dynamic_dimension():
    with pytest.raises(DynamicShapeError, match="'x'.*'batch'"):
        random_inputs(_add_model(shape=("batch", 3)))


def test_random_inputs_from_a_session_match_the_model():
    m = make_conv_bn_relu()
    a = random_inputs(m, seed=2)
    b = random_inputs(make_session(m), seed=2)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_spinning_is_off_for_multithreaded_sessions():
    from xflow.graphs.builders import make_conv_bn_relu
    from xflow.runtime import make_session

    m = make_conv_bn_relu()
    one = make_session(m, intra_threads=1).get_session_options()
    two = make_session(m, intra_threads=2).get_session_options()
    forced = make_session(m, intra_threads=2, spinning=True).get_session_options()
    key = "session.intra_op.allow_spinning"
    assert one.get_session_config_entry(key) == "1"
    assert two.get_session_config_entry(key) == "0"
    assert forced.get_session_config_entry(key) == "1"
