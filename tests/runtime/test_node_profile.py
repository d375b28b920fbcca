"""``node_times``: every node's kernel time inside the whole graph, from ORT's profiler."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from xflow.runtime.node_profile import node_times
from xflow.runtime.session import make_session


def _model(width: int = 512) -> onnx.ModelProto:
    """A MatMul over a ``width``² weight (1 MiB at 512), then a Relu on its ``width`` outputs."""
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((width, width)).astype(np.float32), "w")
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="big"), helper.make_node("Relu", ["h"], ["y"], name="small")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, width])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def test_every_node_is_timed_by_its_name_and_the_bigger_kernel_takes_longer():
    t = node_times(_model(), level="disable", warmup=2, runs=15)
    assert set(t) == {"big", "small"}
    # a 1 MiB GEMV against a 512-float Relu: one is tens of µs, the other about one
    assert t["big"] > 3 * t["small"] and t["big"] > 0


def test_warmup_runs_are_dropped(monkeypatch):
    """The profiler records every run; only the last ``runs`` count (the first run of a session
    is its slowest: a warm-up kept in would move the median of few runs)."""
    import xflow.runtime.node_profile as npf

    durs = [9000.0] * 3 + [10.0] * 4  # µs: 3 warm-up runs, then 4 kept
    events = [{"cat": "Node", "name": "big_kernel_time", "dur": d} for d in durs]
    monkeypatch.setattr(npf.json, "load", lambda f: events)
    assert node_times(_model(8), level="disable", warmup=3, runs=4)["big"] == pytest.approx(0.010)


def test_bad_run_counts_are_rejected():
    with pytest.raises(ValueError, match="runs >= 1"):
        node_times(_model(8), runs=0)


def test_make_session_profile_prefix_writes_a_trace(tmp_path):
    s = make_session(_model(8), profile_prefix=str(tmp_path / "p"))
    s.run(None, {"x": np.ones((1, 8), np.float32)})
    path = s.end_profiling()
    assert path.startswith(str(tmp_path / "p")) and (tmp_path / path.split("/")[-1]).exists()
