"""The one cost layer: named cost models behind one interface, between the IR and the techniques.

Every model answers ``cost(graph, key=None) -> milliseconds`` for an :class:`xflow.graphs.Graph`
(weight-free structure: a rewrite candidate shares its tensors) or an ``onnx.ModelProto``, cached
by graph hash (:mod:`xflow.costs.base`). The names (:data:`COST_MODELS`) mean one thing everywhere:

* ``nominal`` / ``calibrated`` — the one roofline (:mod:`xflow.costs.roofline`) over a device
  profile, a data file (:mod:`xflow.costs.profiles`); ``xflow costs calibrate`` measures this
  machine's (:mod:`xflow.costs.calibration`);
* ``measured-ops`` — per-op configurations timed once and summed, after TASO
  (:mod:`xflow.costs.optable`);
* ``measured`` — end-to-end ONNX Runtime latency (:mod:`xflow.costs.measured`);
* ``ort`` — the per-op table over ONNX Runtime's own optimized graph, what ORT actually runs
  (:mod:`xflow.costs.ort_optimized`);
* ``ort-context`` — the same graph with each op configuration timed inside a graph, where the
  other ops have pushed its weights out of the caches (:mod:`xflow.costs.ort_context`);
* ``torch`` — the roofline over the torch backend's generated kernels
  (:mod:`xflow.costs.torch_kernels`).

All timing goes through the measurement core (:mod:`xflow.runtime.measure`). Layer: above
``xflow.graphs`` and ``xflow.runtime``, below the techniques (rewrites, envs, parallel).
"""
from __future__ import annotations

from xflow._lazy import lazy_getattr

_EXPORTS = {
    "CostModel": "xflow.costs.base",
    "CachedCost": "xflow.costs.base",
    "FunctionCost": "xflow.costs.base",
    "DeviceProfile": "xflow.costs.profiles",
    "nominal": "xflow.costs.profiles",
    "read_profile": "xflow.costs.profiles",
    "Roofline": "xflow.costs.roofline",
    "calibrate": "xflow.costs.calibration",
    "MeasuredCost": "xflow.costs.measured",
    "MeasuredOpCost": "xflow.costs.optable",
    "OrtOptimizedCost": "xflow.costs.ort_optimized",
    "OrtContextCost": "xflow.costs.ort_context",
    "TorchKernelCost": "xflow.costs.torch_kernels",
    "agreement": "xflow.costs.agreement",
    "spearman_ci": "xflow.costs.spearman",
    "COST_MODELS": "xflow.costs.names",
    "make_cost_model": "xflow.costs.registry",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
