"""Hand-made ONNX graphs and dataflow graphs with known structure for the parallel tests."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from xflow.parallel.dataflow import DataflowGraph, DFNode


def onnx_model(nodes, inputs, outputs, inits=None, opset=17) -> onnx.ModelProto:
    """Build a checked ONNX model from (name, shape) inputs/outputs and numpy initializers."""
    g = helper.make_graph(
        nodes, "t",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v), name=k) for k, v in (inits or {}).items()],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    if any(s is None for _, s in outputs):  # let shape inference fill in unknown output shapes
        m = onnx.shape_inference.infer_shapes(m)
        inferred = {vi.name: vi for vi in m.graph.value_info}
        for o in m.graph.output:
            if not o.type.tensor_type.HasField("shape") and o.name in inferred:
                o.CopyFrom(inferred[o.name])
    onnx.checker.check_model(m)
    return m


def ort_run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Reference outputs from ONNX Runtime with optimizations disabled."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


def dag(edges: list[tuple[str, str]], costs: dict[str, float]) -> DataflowGraph:
    """A dataflow graph with nodes named by ``costs`` (insertion order must be topological)."""
    names = list(costs)
    preds = {n: [a for a, b in edges if b == n] for n in names}
    nodes = [DFNode(id=i, name=n, op="Op", inputs=[f"t_{p}" for p in preds[n]] or ["x"],
                    outputs=[f"t_{n}"], cost={1: float(costs[n]), 2: float(costs[n]) * 0.6})
             for i, n in enumerate(names)]
    sinks = [n for n in names if not any(a == n for a, _ in edges)]
    return DataflowGraph(nodes=nodes, inputs=["x"], outputs=[f"t_{s}" for s in sinks], source="fx")
