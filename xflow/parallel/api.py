"""Public entry point: ``compile_model`` (ONNX → plan → generated module) and its result."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xflow.errors import UnknownName
from xflow.parallel.codegen import BACKENDS, generate, load_generated
from xflow.parallel.cost import analytic_costs, apply_costs, measured_costs, measured_overheads
from xflow.parallel.dataflow import DataflowGraph, from_onnx
from xflow.parallel.planner import PlanConfig, _serial_plan, make_plan
from xflow.parallel.record import load_record, plan_from_record, plan_record, save_record
from xflow.parallel.schedule import Plan
from xflow.runtime.backend_lower import LowerOptions
from xflow.runtime.measure import Variant, measure
from xflow.safeio import atomic_output, atomic_write_text

__all__ = ["CompileResult", "compile_model", "replay", "decide_parallel", "COST_MODELS"]

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
        raise UnknownName(f"unknown cost model {cost!r}; choose one of {', '.join(COST_MODELS)}")


def compile_model(src: Any, *, workers: int = 2, mode: str = "hybrid", backend: str = "threads",
                  cost: str = "measured", config: PlanConfig | None = None,
                  graph: DataflowGraph | None = None, source_name: str | None = None,
                  verify: bool = False, verify_repeats: int = 7,
                  input_shapes: dict[str, Any] | None = None, lower: Any = None) -> CompileResult:
    """Parallelize an ONNX model (path, bytes or ModelProto) and generate its Python module.

    Steps: load + constant propagation + DCE → per-op costs (``measured`` profile, cached, or
    ``analytic``) → regions, linear clustering, merging to ``workers``, cloning → per-region hybrid
    decision and safety valve (``mode``) → code generation for ``backend`` → JSON record.
    Pass ``graph`` to reuse an already built (and costed) dataflow graph; ``input_shapes`` fixes
    symbolic input dimensions of a dynamically exported model; ``lower`` sets the torch backend's
    lowering (:class:`xflow.runtime.backend_lower.LowerOptions`: layout, fusion, oneDNN).

    ``verify=True`` adds a *measured* safety valve (:func:`decide_parallel`): the generated module
    and the serial baseline (1 thread, or ``workers`` threads in hybrid mode when the plan's
    baseline is multi-threaded) are timed with the measurement core (``verify_repeats`` rounds) and
    the serial schedule is emitted unless the verdict is ``faster`` by at least ``min_gain``. The
    comparison (speed-up, interval, verdict) goes into the record (``"verify"``).
    """
    if backend not in BACKENDS:
        raise UnknownName(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "cuda_streams":
        if lower is None:
            lower = LowerOptions(device="cuda")
        if cost == "measured":  # the CPU profiler cannot time GPU kernels
            log.info("cuda_streams: using analytic costs (measured profiles time the CPU)")
            cost = "analytic"
    g = graph if graph is not None else from_onnx(src, input_shapes=input_shapes, lower=lower)
    if not all(n.cost for n in g.nodes):
        _costs(g, cost, workers)
    if config is None:
        cfg = PlanConfig(workers=workers, mode=mode)
        if cost == "measured":  # hand-off costs measured now, on this machine
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
    lowering = g.program.options.as_dict() if g.program is not None else None
    rec = plan_record(g, plan, config={**cfg.__dict__, "cost": cost, "backend": backend, "lower": lowering},
                      extra=extra)
    return CompileResult(graph=g, plan=plan, source=code, backend=backend, record=rec)


def decide_parallel(parallel: Any, serial: Any, *, min_gain: float, rounds: int = 7,
                    serial_threads: int = 1, warmup: int = 2) -> dict[str, Any]:
    """Measured safety valve: time ``parallel()`` against ``serial()`` with the measurement core and
    keep the parallel schedule only on a ``faster`` verdict with at least ``min_gain`` effect.

    Both run interleaved (plus an A/A control of the serial baseline for the noise floor); the
    parallel module uses several threads, so wall time decides. Returns the comparison (ratio
    parallel/serial with interval, speed-up, verdict, noise floor) and ``kept_parallel``.
    """
    m = measure({"serial": Variant(serial, threads=serial_threads if serial_threads == 1 else None),
                 "parallel": Variant(parallel, threads=None)},
                baseline="serial", aa=True, warmup=warmup, rounds=max(2, rounds), clock="wall")
    c = m.compare("parallel", min_effect=min_gain)
    keep = c.verdict == "faster"
    return {"parallel_ms": m.median_ms("parallel"), "serial_ms": m.median_ms("serial"),
            "serial_threads": serial_threads, "measured_speedup": c.speedup,
            "speedup_ci": list(c.speedup_ci), "verdict": c.verdict, "noise_floor": c.noise_floor,
            "min_effect": min_gain, "clock": m.clock, "rounds": m.rounds, "kept_parallel": keep,
            "summary": c.format(), "warnings": list(m.warnings)}


def _verify(g: DataflowGraph, plan: Plan, code: str, cfg: PlanConfig, backend: str,
            name: str | None, repeats: int) -> tuple[Plan, str, dict[str, Any]]:
    """Measured safety valve on generated code (see :func:`decide_parallel`): the parallel module
    against the serial baseline (1 thread, or ``workers`` threads when the plan's baseline is
    multi-threaded); the serial schedule is emitted unless the verdict is ``faster``."""
    import numpy as np
    import torch

    base_threads = int(plan.info.get("baseline_threads", 1))
    serial = _serial_plan(g, cfg, base_threads, plan.mode, True, dict(plan.info))
    serial_code = generate(g, serial, backend=backend, source=name)
    rng = np.random.default_rng(0)
    xs = [torch.from_numpy(rng.standard_normal(g.shapes[i]).astype(np.float32)) for i in g.inputs]
    par_m = load_generated(code, g)[1]
    ser_m = load_generated(serial_code, g)[1]
    try:
        info = decide_parallel(lambda: par_m(*xs), lambda: ser_m(*xs), min_gain=cfg.min_gain,
                               rounds=repeats, serial_threads=base_threads)
    finally:
        par_m.close()
        ser_m.close()
    log.info("verify: parallel vs serial %s -> %s", info["summary"],
             "keep" if info["kept_parallel"] else "serial")
    if info["kept_parallel"]:
        return plan, code, info
    serial.info["verify_fallback"] = True
    return serial, serial_code, info


def replay(record: dict[str, Any] | str | Path, src: Any, *, backend: str | None = None) -> CompileResult:
    """Regenerate the module of a recorded compilation (same plan, same costs) for model ``src``."""
    rec = load_record(record) if isinstance(record, (str, Path)) else record
    lo = rec.get("config", {}).get("lower")
    g = from_onnx(src, lower=LowerOptions(**lo) if lo else None)
    plan = plan_from_record(g, rec)
    be = backend or rec.get("config", {}).get("backend", "threads")
    code = generate(g, plan, backend=be, source=rec.get("source"))
    return CompileResult(graph=g, plan=plan, source=code, backend=be, record=rec)
