"""The cost-model names (:data:`COST_MODELS`), importable without onnx (CLI registration)."""
from __future__ import annotations

__all__ = ["COST_MODELS"]

#: Every cost-model name with a one-line description; each means one thing everywhere.
COST_MODELS: dict[str, str] = {
    "nominal": "roofline over the nominal device profile (not measured)",
    "calibrated": "roofline over this machine's calibrated profile (xflow costs calibrate)",
    "measured-ops": "sum of per-op times, each op configuration measured once (TASO)",
    "measured": "end-to-end ONNX Runtime latency of the graph",
    "ort": "per-op table over the graph ONNX Runtime runs (its own optimized graph, level all)",
    "ort-context": "the graph ONNX Runtime runs, each op configuration timed inside a graph (ORT's profiler)",
    "torch": "roofline over the kernels of the torch backend's generated module (fused groups)",
}
