"""Public entry point: ``compile_model`` (ONNX → plan → generated module) and its result."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xflow.parallel.codegen import BACKENDS, generate, load_generated
from xflow.parallel.cost import analytic_costs, apply_costs, measured_costs
from xflow.parallel.dataflow import DataflowGraph, from_onnx
from xflow.parallel.planner import PlanConfig, make_plan
from xflow.parallel.record import load_record, plan_from_record, plan_record, save_record
from xflow.parallel.schedule import Plan

__all__ = ["CompileResult", "compile_model", "replay", "COST_MODELS"]

log = logging.getLogger(__name__)

COST_MODELS = ("measured", "analytic")


@dataclass
class CompileResult:
    """The outcome of :func:`compile_model`: graph, plan, generated source and the JSON record."""

    graph: DataflowGraph
    plan: Plan
    source: str
    backend: str
    record: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Headline numbers (for the CLI and notebooks)."""
        p = self.plan
        return {
            "nodes": len(self.graph.nodes),
            "stages": len(p.stages),
            "parallel_stages": sum(1 for s in p.stages if s.kind == "parallel"),
            "clusters": sum(len(s.clusters) for s in p.stages if s.kind == "parallel"),
            "cloned_nodes": p.n_clones,
            "const_nodes_folded": self.graph.pass_stats.get("const_nodes_folded", 0),
            "dead_nodes_removed": self.graph.pass_stats.get("dead_nodes_removed", 0),
            "predicted_us": round(p.predicted_us, 1),
            "serial_predicted_us": round(p.serial_predicted_us, 1),
            "predicted_speedup": round(p.predicted_speedup, 3),
            "fallback": p.fallback,
            "mode": p.mode,
            "workers": p.workers,
            "backend": self.backend,
        }

    def write(self, path: str | Path) -> dict[str, Path]:
        """Write ``path`` (.py), the cleaned model next to it (.onnx) and the record (.json).

        Each file is written atomically; ``path`` must end in ``.py`` so the three never coincide.
        """
        import onnx

        from xflow.safeio import atomic_output, atomic_write_text

        py = Path(path)
        if py.suffix != ".py":
            raise ValueError(f"generated module path must end in .py, got {py}")
        onnx_path = py.with_suffix(".onnx")
        src = self.source.replace("'model.onnx'", repr(onnx_path.name))
        with atomic_output(onnx_path) as tmp:
            onnx.save(self.graph.model, str(tmp))
        atomic_write_text(py, src)
        rec = save_record(self.record, py.with_suffix(".json"))
        return {"module": py, "weights": onnx_path, "record": rec}

    def load(self):
        """Import the generated module and return a ready ``Model`` instance."""
        return load_generated(self.source, self.graph)[1]


def _costs(g: DataflowGraph, cost: str, workers: int) -> None:
    threads = sorted({1, workers})
    if cost == "measured":
        apply_costs(g, measured_costs(g, threads))
    elif cost == "analytic":
        apply_costs(g, analytic_costs(g, threads))
    else:
        from xflow.errors import UnknownName

        raise UnknownName(f"unknown cost model {cost!r}; choose one of {', '.join(COST_MODELS)}")


def compile_model(src: Any, *, workers: int = 2, mode: str = "hybrid", backend: str = "threads",
                  cost: str = "measured", config: PlanConfig | None = None,
                  graph: DataflowGraph | None = None, source_name: str | None = None,
                  verify: bool = False, verify_repeats: int = 7,
                  input_shapes: dict[str, Any] | None = None) -> CompileResult:
    """Parallelize an ONNX model (path, bytes or ModelProto) and generate its Python module.

    Steps: load + constant propagation + DCE → per-op costs (``measured`` profile, cached, or
    ``analytic``) → regions, linear clustering, merging to ``workers``, cloning → per-region hybrid
    decision and safety valve (``mode``) → code generation for ``backend`` → JSON record.
    Pass ``graph`` to reuse an already built (and costed) dataflow graph; ``input_shapes`` fixes
    symbolic input dimensions of a dynamically exported model.

    ``verify=True`` adds a *measured* safety valve: the generated module and the serial baseline
    (1 thread, or ``workers`` threads in hybrid mode when the plan's baseline is multi-threaded)
    are timed interleaved (``verify_repeats`` rounds) and the serial schedule is emitted unless the
    parallel one is at least ``min_gain`` faster. The times go into the record (``"verify"``).
    """
    if backend not in BACKENDS:
        from xflow.errors import UnknownName

        raise UnknownName(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    g = graph if graph is not None else from_onnx(src, input_shapes=input_shapes)
    if not all(n.cost for n in g.nodes):
        _costs(g, cost, workers)
    if config is None:
        cfg = PlanConfig(workers=workers, mode=mode)
        if cost == "measured":  # hand-off costs measured now, on this machine
            from xflow.parallel.cost import measured_overheads

            ov = measured_overheads(workers)
            cfg.fork_us = max(cfg.fork_us, ov["fork_us"])
            cfg.sync_us = max(cfg.sync_us, ov["sync_us"])
    else:
        cfg = config
    plan = make_plan(g, cfg)
    name = source_name or (str(src) if isinstance(src, (str, Path)) else None)
    code = generate(g, plan, backend=backend, source=name)
    extra: dict[str, Any] = {"source": name}
    if verify and not plan.fallback and any(s.kind == "parallel" for s in plan.stages):
        plan, code, extra["verify"] = _verify(g, plan, code, cfg, backend, name, verify_repeats)
    rec = plan_record(g, plan, config={**cfg.__dict__, "cost": cost, "backend": backend},
                      extra=extra)
    return CompileResult(graph=g, plan=plan, source=code, backend=backend, record=rec)


def _verify(g: DataflowGraph, plan: Plan, code: str, cfg: PlanConfig, backend: str,
            name: str | None, repeats: int) -> tuple[Plan, str, dict[str, Any]]:
    """Measured safety valve: keep ``plan`` only if it beats the serial baseline by ``min_gain``."""
    import numpy as np
    import torch

    from xflow.parallel.bench import measure
    from xflow.parallel.planner import _serial_plan

    base_threads = int(plan.info.get("baseline_threads", 1))
    serial = _serial_plan(g, cfg, base_threads, plan.mode, True, dict(plan.info))
    serial_code = generate(g, serial, backend=backend, source=name)
    rng = np.random.default_rng(0)
    xs = [torch.from_numpy(rng.standard_normal(g.shapes[i]).astype(np.float32)) for i in g.inputs]
    par_m = load_generated(code, g)[1]
    ser_m = load_generated(serial_code, g)[1]
    try:
        st = measure({"parallel": lambda: par_m(*xs), "serial": lambda: ser_m(*xs)},
                     warmup=2, repeats=repeats, inner=2)
    finally:
        par_m.close()
        ser_m.close()
    par, ser = st["parallel"]["median_ms"], st["serial"]["median_ms"]
    keep = ser / par >= 1.0 + cfg.min_gain
    info = {"parallel_ms": par, "serial_ms": ser, "serial_threads": base_threads,
            "measured_speedup": ser / par, "kept_parallel": keep}
    log.info("verify: parallel %.2f ms vs serial %.2f ms -> %s", par, ser, "keep" if keep else "serial")
    if keep:
        return plan, code, info
    serial.info["verify_fallback"] = True
    return serial, serial_code, info


def replay(record: dict[str, Any] | str | Path, src: Any, *, backend: str | None = None) -> CompileResult:
    """Regenerate the module of a recorded compilation (same plan, same costs) for model ``src``."""
    rec = load_record(record) if isinstance(record, (str, Path)) else record
    g = from_onnx(src)
    plan = plan_from_record(g, rec)
    be = backend or rec.get("config", {}).get("backend", "threads")
    code = generate(g, plan, backend=be, source=rec.get("source"))
    return CompileResult(graph=g, plan=plan, source=code, backend=be, record=rec)
