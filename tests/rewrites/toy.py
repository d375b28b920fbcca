"""Tiny hand-built ONNX graphs and the shared positive/negative rule checks for the rewrite tests."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from xflow.rewrites import Rule
from xflow.rewrites.verify import verify_rewrite

RNG = np.random.default_rng(0)


def w(*shape, scale=0.3):
    """Seeded float32 weights."""
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def model(nodes, inputs: dict, outputs, inits: dict | None = None, opset: int = 17) -> onnx.ModelProto:
    """Build a checked model: ``inputs`` name->shape (float32), ``outputs`` names (types inferred)."""
    g = helper.make_graph(
        nodes, "toy",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v)) for k, v in inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    ig = onnx.shape_inference.infer_shapes(m, strict_mode=True).graph
    inferred = {vi.name: vi for vi in list(ig.value_info) + list(ig.output) if vi.type.tensor_type.HasField("shape")}
    for o in m.graph.output:  # give graph outputs their inferred types/shapes
        if o.name in inferred:
            o.CopyFrom(inferred[o.name])
    onnx.checker.check_model(m, full_check=True)
    return m


def node(op, ins, outs, name=None, **attrs):
    return helper.make_node(op, ins, outs, name=name or outs[0], **attrs)


def assert_positive(rule: Rule, m: onnx.ModelProto, count: int) -> list[onnx.ModelProto]:
    """``rule`` matches ``count`` times; every application passes the checker and keeps outputs."""
    before = m.SerializeToString()
    locs = rule.match(m)
    assert len(locs) == count, (locs, rule.explain(m))
    outs = []
    for loc in locs:
        new = rule.apply(m, loc)
        onnx.checker.check_model(new, full_check=True)
        verify_rewrite(m, new, n_trials=2)
        outs.append(new)
    assert m.SerializeToString() == before, "apply mutated its input"
    return outs


def assert_negative(rule: Rule, m: onnx.ModelProto, reason: str) -> None:
    """``rule`` does not match ``m`` and ``explain`` gives a reason containing ``reason``."""
    assert rule.match(m) == []
    reasons = [r for _, r in rule.explain(m)]
    assert any(reason in r for r in reasons), reasons


def count_ops(m: onnx.ModelProto, op: str) -> int:
    return sum(n.op_type == op for n in m.graph.node)
