"""Dataflow-graph task parallelization with code generation (after Ramiel, IPDPS 2024).

ONNX model → dataflow graph of the shared torch backend's kernels (constant propagation,
dead-code elimination, Conv+BN+activation fusion; :mod:`xflow.runtime.backend_lower`) → per-op costs
(measured per thread count, or analytic) → fork–join regions → linear clustering along the critical
path → merge to the number of workers → node cloning → per-region hybrid choice between branch
parallelism and intra-op threads → safety valve → a readable standalone Python module (thread pool
or ``torch.jit.fork`` backend) plus a replayable JSON record.

Typical use::

    from xflow.parallel import compile_model
    res = compile_model("model.onnx", workers=2, mode="hybrid", backend="threads", verify=True)
    res.write("gen.py")          # gen.py + gen.onnx (weights) + gen.json (record)
    model = res.load(); y = model(x)
"""
from __future__ import annotations

from xflow._lazy import lazy_getattr

_EXPORTS = {
    "compile_model": "xflow.parallel.api",
    "CompileResult": "xflow.parallel.api",
    "replay": "xflow.parallel.api",
    "COST_MODELS": "xflow.parallel.api",
    "DataflowGraph": "xflow.parallel.dataflow",
    "DFNode": "xflow.parallel.dataflow",
    "from_onnx": "xflow.parallel.dataflow",
    "from_fx": "xflow.parallel.dataflow",
    "load_onnx": "xflow.parallel.dataflow",
    "propagate_constants": "xflow.parallel.passes",
    "eliminate_dead_code": "xflow.parallel.passes",
    "analytic_costs": "xflow.parallel.cost",
    "measured_costs": "xflow.parallel.cost",
    "apply_costs": "xflow.parallel.cost",
    "measured_overheads": "xflow.parallel.cost",
    "predicted_timeline": "xflow.parallel.timeline",
    "measured_timeline": "xflow.parallel.timeline",
    "plot_gantt": "xflow.parallel.timeline",
    "render_clusters": "xflow.parallel.timeline",
    "InceptionToy": "xflow.parallel.models",
    "NasNetLike": "xflow.parallel.models",
    "benchmark_model": "xflow.parallel.models",
    "find_regions": "xflow.parallel.cluster",
    "cut_nodes": "xflow.parallel.cluster",
    "linear_clustering": "xflow.parallel.cluster",
    "merge_clusters": "xflow.parallel.cluster",
    "clone_nodes": "xflow.parallel.cluster",
    "Plan": "xflow.parallel.schedule",
    "Stage": "xflow.parallel.schedule",
    "Cluster": "xflow.parallel.schedule",
    "simulate_stage": "xflow.parallel.schedule",
    "PlanConfig": "xflow.parallel.planner",
    "make_plan": "xflow.parallel.planner",
    "MODES": "xflow.parallel.planner",
    "generate": "xflow.parallel.codegen",
    "load_generated": "xflow.parallel.codegen",
    "BACKENDS": "xflow.parallel.codegen",
    "plan_record": "xflow.parallel.record",
    "plan_from_record": "xflow.parallel.record",
    "supported_ops": "xflow.runtime.backend_ops",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
