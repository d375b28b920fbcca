"""ONNX Runtime harness: sessions, latency measurement, numeric equivalence, device descriptor.

* :func:`make_session` — one ORT session factory (provider, optimization level, threads, mode)
* :func:`random_inputs` — seeded feeds from a model's declared input types/shapes
* :func:`measure_latency`, :func:`compare_latency`, :func:`measure_interleaved` — warm-up, repeats,
  median + IQR; comparisons interleave repeats and report ratios
* :func:`outputs_close`, :func:`assert_equivalent` — numeric equivalence with dtype-aware tolerances
* :func:`describe_device` — which machine produced a number
"""
from xflow._lazy import lazy_getattr

# submodules load on first use: importing ``xflow.runtime.measure`` (the measurement core) does not
# import ONNX Runtime or onnx_ir
_EXPORTS = {
    "DeviceInfo": "xflow.runtime.device",
    "cuda_available": "xflow.runtime.device",
    "describe_device": "xflow.runtime.device",
    "DEFAULT_TOLERANCES": "xflow.runtime.equivalence",
    "CompareOptions": "xflow.runtime.equivalence",
    "OutputDiff": "xflow.runtime.equivalence",
    "assert_equivalent": "xflow.runtime.equivalence",
    "compare_outputs": "xflow.runtime.equivalence",
    "outputs_close": "xflow.runtime.equivalence",
    "tolerances_for": "xflow.runtime.equivalence",
    "LatencyComparison": "xflow.runtime.latency",
    "LatencyStats": "xflow.runtime.latency",
    "compare_latency": "xflow.runtime.latency",
    "measure_interleaved": "xflow.runtime.latency",
    "measure_latency": "xflow.runtime.latency",
    "summarize": "xflow.runtime.latency",
    "LEVELS": "xflow.runtime.session",
    "SessionSettings": "xflow.runtime.session",
    "available_devices": "xflow.runtime.session",
    "make_session": "xflow.runtime.session",
    "model_bytes": "xflow.runtime.session",
    "random_inputs": "xflow.runtime.session",
}

__all__ = [
    "DeviceInfo",
    "describe_device",
    "cuda_available",
    "LEVELS",
    "SessionSettings",
    "make_session",
    "model_bytes",
    "random_inputs",
    "available_devices",
    "LatencyStats",
    "LatencyComparison",
    "measure_latency",
    "compare_latency",
    "measure_interleaved",
    "summarize",
    "DEFAULT_TOLERANCES",
    "OutputDiff",
    "CompareOptions",
    "compare_outputs",
    "outputs_close",
    "assert_equivalent",
    "tolerances_for",
]

__getattr__ = lazy_getattr(__name__, _EXPORTS)
