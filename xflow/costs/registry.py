"""Cost models by name — each name means one thing everywhere (CLI flags, env ids, notebooks).

==================  ===========================================================================
name                model
==================  ===========================================================================
``nominal``         :class:`~xflow.costs.roofline.Roofline` over the shipped nominal profile of
                    the device (deterministic; never measured)
``calibrated``      the same roofline over this machine's calibrated profile
                    (``xflow costs calibrate``; calibrated on first use when missing)
``measured-ops``    :class:`~xflow.costs.optable.MeasuredOpCost`: per-op configurations timed
                    once and summed (TASO)
``measured``        :class:`~xflow.costs.measured.MeasuredCost`: end-to-end ORT latency
``ort``             :class:`~xflow.costs.ort_optimized.OrtOptimizedCost`: the per-op table over
                    the graph ORT runs (ORT's own optimized graph: fusions, NCHWc layout)
``ort-context``     :class:`~xflow.costs.ort_context.OrtContextCost`: the same graph, each op
                    configuration timed inside the first graph that has it (ORT's profiler)
``torch``           :class:`~xflow.costs.torch_kernels.TorchKernelCost`: roofline over the torch
                    backend's generated kernels (its Conv+BN+activation / linear fusions)
==================  ===========================================================================

``analytic`` is not a name: it used to mean ``nominal`` in ``xflow rewrite`` and ``calibrated``
in ``xflow rl``.
"""
from __future__ import annotations

from typing import Any, Callable

from xflow.costs.base import CostModel, FunctionCost
from xflow.costs.calibration import calibrate
from xflow.costs.measured import MeasuredCost
from xflow.costs.names import COST_MODELS
from xflow.costs.optable import MeasuredOpCost
from xflow.costs.ort_context import OrtContextCost
from xflow.costs.ort_optimized import OrtOptimizedCost
from xflow.costs.roofline import Roofline
from xflow.costs.torch_kernels import TorchKernelCost
from xflow.errors import UnknownName

__all__ = ["COST_MODELS", "make_cost_model"]


def make_cost_model(spec: "str | CostModel | Callable[[Any], float]", device: str = "cpu",
                    threads: int = 1) -> CostModel:
    """Resolve a name of :data:`COST_MODELS`, pass a :class:`CostModel` through, or wrap a plain
    ``fn(graph) -> ms`` in a :class:`~xflow.costs.base.FunctionCost`."""
    if not isinstance(spec, str):
        if hasattr(spec, "cost") and hasattr(spec, "name"):
            return spec  # type: ignore[return-value]
        if callable(spec):
            return FunctionCost(spec)
        raise UnknownName(f"cost model {spec!r} is neither a name, a CostModel nor a callable")
    if spec == "nominal":
        return Roofline(device, name="nominal", threads=threads)
    if spec == "calibrated":
        return Roofline(calibrate(device, threads=threads), name="calibrated", threads=1)
    if spec == "measured-ops":
        return MeasuredOpCost(device=device, threads=threads)
    if spec == "measured":
        return MeasuredCost(device=device, threads=threads)
    if spec == "ort":
        return OrtOptimizedCost(device=device, threads=threads)
    if spec == "ort-context":
        return OrtContextCost(device=device, threads=threads)
    if spec == "torch":
        return TorchKernelCost(device, threads=threads, device=device)
    hint = " ('analytic' was split: use 'nominal' or 'calibrated')" if spec == "analytic" else ""
    raise UnknownName(f"unknown cost model {spec!r}{hint}; choose one of {', '.join(COST_MODELS)}")
