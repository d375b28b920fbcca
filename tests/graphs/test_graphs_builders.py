"""Toy graph builders: valid, runnable, deterministic, addressable by name."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from xflow.errors import UnknownName
from xflow.graphs.builders import BUILDERS, OPSET, build


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_builder_is_valid_and_runs(name):
    m = build(name)
    onnx.checker.check_model(m, full_check=True)
    assert m.opset_import[0].version == OPSET
    assert m.SerializeToString() == build(name).SerializeToString()  # deterministic
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {i.name: rng.standard_normal(i.shape).astype(np.float32) for i in sess.get_inputs()}
    outs = sess.run(None, feeds)
    declared = [tuple(d.dim_value for d in o.type.tensor_type.shape.dim) for o in m.graph.output]
    assert [o.shape for o in outs] == declared
    assert all(np.isfinite(o).all() for o in outs)


def test_seed_changes_weights():
    a, b = build("conv_bn_relu"), build("make_conv_bn_relu", seed=1)
    assert a.graph.initializer[0].raw_data != b.graph.initializer[0].raw_data


def test_unknown_builder():
    with pytest.raises(UnknownName, match="unknown toy graph 'resnet'"):
        build("resnet")
