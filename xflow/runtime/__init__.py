"""ONNX Runtime harness: sessions, latency measurement, numeric equivalence, device descriptor.

* :func:`make_session` — one ORT session factory (provider, optimization level, threads, mode)
* :func:`random_inputs` — seeded feeds from a model's declared input types/shapes
* :func:`measure_latency`, :func:`compare_latency`, :func:`measure_interleaved` — warm-up, repeats,
  median + IQR; comparisons interleave repeats and report ratios
* :func:`outputs_close`, :func:`assert_equivalent` — numeric equivalence with dtype-aware tolerances
* :func:`describe_device` — which machine produced a number
"""
from xflow.runtime.device import DeviceInfo, cuda_available, describe_device
from xflow.runtime.equivalence import (
    DEFAULT_TOLERANCES,
    CompareOptions,
    OutputDiff,
    assert_equivalent,
    compare_outputs,
    outputs_close,
    tolerances_for,
)
from xflow.runtime.latency import (
    LatencyComparison,
    LatencyStats,
    compare_latency,
    measure_interleaved,
    measure_latency,
    summarize,
)
from xflow.runtime.session import (
    LEVELS,
    SessionSettings,
    available_devices,
    make_session,
    model_bytes,
    random_inputs,
)

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
