"""Hand-made ONNX graphs and dataflow graphs with known structure for the parallel tests."""
from __future__ import annotations

import numpy as np
import onnx

from tests.runtime.backend_helpers import onnx_model, ort_outputs  # noqa: F401 - re-exported
from xflow.parallel.dataflow import DataflowGraph, DFNode


def ort_run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Reference outputs from ONNX Runtime with optimizations disabled (the backend tests' one helper)."""
    return ort_outputs(model, feeds)


def dag(edges: list[tuple[str, str]], costs: dict[str, float]) -> DataflowGraph:
    """A dataflow graph with nodes named by ``costs`` (insertion order must be topological)."""
    names = list(costs)
    preds = {n: [a for a, b in edges if b == n] for n in names}
    nodes = [DFNode(id=i, name=n, op="Op", inputs=[f"t_{p}" for p in preds[n]] or ["x"],
                    outputs=[f"t_{n}"], cost={1: float(costs[n]), 2: float(costs[n]) * 0.6})
             for i, n in enumerate(names)]
    sinks = [n for n in names if not any(a == n for a, _ in edges)]
    return DataflowGraph(nodes=nodes, inputs=["x"], outputs=[f"t_{s}" for s in sinks], source="fx")
