"""Interleaved latency measurement of generated code against torch eager and ONNX Runtime.

:func:`measure` times a dict of zero-argument callables round-robin (warm-up first, then
``repeats`` rounds, each round calling every variant once in a rotated order) and reports median
and IQR per variant; :func:`variants_for` builds the standard set of variants for one model:

* ``gen_serial``        generated code, one stage, 1 intra-op thread (the reference)
* ``gen_serial_torchscript``  the same, scripted (reference for the torchscript backend)
* ``gen_intra``         generated code, one stage, ``W`` intra-op threads
* ``gen_branch_<be>``   branch parallelism on ``W`` workers, 1 thread each (Ramiel)
* ``gen_hybrid_<be>``   per-region choice between branches and ``W`` intra-op threads
* ``gen_verified_threads``  hybrid plan kept only if measured faster than serial at compile time
* ``eager_1t`` / ``eager_<W>t``     the torch module (when given) with 1 / ``W`` intra-op threads
* ``ort_seq_1t`` / ``ort_seq_<W>t`` ONNX Runtime sequential, 1 / ``W`` intra-op threads
* ``ort_parallel``      ONNX Runtime ``ORT_PARALLEL`` with ``W`` inter-op threads
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["measure", "variants_for", "run"]


def measure(fns: dict[str, Callable[[], Any]], *, warmup: int = 3, repeats: int = 15,
            inner: int = 3, pause_s: float = 0.01, seed: int = 0) -> dict[str, dict[str, float]]:
    """Median / IQR / mean latency (ms) of each callable, measured interleaved.

    Each of ``repeats`` rounds runs every variant (in a freshly shuffled order, seeded) ``inner``
    times back to back and keeps the median of all but the first call, with a short pause between
    variants: the first call after switching variants pays for the previous variant's spinning
    threads (OpenMP / ORT spin-waits), which on a loaded 2-core machine would otherwise be charged
    to whichever variant comes next.
    """
    import random

    rng = random.Random(seed)
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = list(names)
        rng.shuffle(order)
        for n in order:
            time.sleep(pause_s)
            ts = []
            for _ in range(max(inner, 1)):
                t0 = time.perf_counter()
                fns[n]()
                ts.append((time.perf_counter() - t0) * 1e3)
            samples[n].append(float(np.median(ts[1:] if len(ts) > 1 else ts)))
    out = {}
    for n, s in samples.items():
        q = np.percentile(s, [25, 50, 75])
        out[n] = {"median_ms": float(q[1]), "iqr_ms": float(q[2] - q[0]), "mean_ms": float(statistics.mean(s))}
    return out


def _eager(module, inputs, threads: int) -> Callable[[], Any]:
    import torch

    def f():
        prev = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with torch.no_grad():
                return module(*inputs)
        finally:
            torch.set_num_threads(prev)
    return f


def _ort(path, feeds, *, intra: int, parallel: bool = False) -> Callable[[], Any]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = intra
    so.inter_op_num_threads = 2 if parallel else 1
    so.execution_mode = ort.ExecutionMode.ORT_PARALLEL if parallel else ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    # no spin-waiting after a run: on a shared 2-core machine spinning threads steal the next
    # variant's core (the same reason OpenMP variants are measured in blocks)
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return lambda: sess.run(None, feeds)


def variants_for(onnx_path, *, workers: int = 2, module=None, backends=("threads", "torchscript"),
                 cost: str = "measured", ort: bool = True) -> tuple[dict[str, Callable[[], Any]], dict[str, Any]]:
    """Standard variants for one model; returns ``(callables, compile summaries by variant)``."""
    import torch

    from xflow.parallel.api import compile_model
    from xflow.parallel.dataflow import from_onnx

    g = from_onnx(onnx_path)
    rng = np.random.default_rng(0)
    feeds_np = {i: rng.standard_normal(g.shapes[i]).astype(np.float32) for i in g.inputs}
    feeds_t = [torch.from_numpy(feeds_np[i]) for i in g.inputs]
    fns: dict[str, Callable[[], Any]] = {}
    info: dict[str, Any] = {}
    W = workers
    plans = [("gen_serial", "serial", "threads"), ("gen_intra", "intra", "threads")]
    for be in backends:
        if be != "threads":
            plans.append((f"gen_serial_{be}", "serial", be))
        plans += [(f"gen_branch_{be}", "branch", be), (f"gen_hybrid_{be}", "hybrid", be)]
    plans.append(("gen_verified_threads", "hybrid+verify", "threads"))
    for name, mode, be in plans:
        verify = mode.endswith("+verify")
        res = compile_model(onnx_path, workers=W, mode=mode.replace("+verify", ""), backend=be,
                            cost=cost, graph=g, verify=verify)
        m = res.load()
        fns[name] = (lambda m=m: m(*feeds_t))
        info[name] = {**res.summary(), "record": res.record}
    if module is not None:
        fns["eager_1t"] = _eager(module, feeds_t, 1)
        fns[f"eager_{W}t"] = _eager(module, feeds_t, W)
    if ort:
        fns["ort_seq_1t"] = _ort(onnx_path, feeds_np, intra=1)
        fns[f"ort_seq_{W}t"] = _ort(onnx_path, feeds_np, intra=W)
        fns["ort_parallel"] = _ort(onnx_path, feeds_np, intra=1, parallel=True)
    return fns, info


def run(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Experiment entry point: ``{"model", "quick", "workers", "repeats", "warmup", "backends"}`` → records.

    One record per (variant, metric) with ``speedup_vs_gen_serial`` alongside the latencies.
    """
    from xflow.parallel.models import benchmark_model, torch_benchmark_model

    name = config["model"]
    quick = bool(config.get("quick", True))
    W = int(config.get("workers", 2))
    module, _x = torch_benchmark_model(name, quick=quick)
    path = benchmark_model(name, quick=quick)
    fns, info = variants_for(path, workers=W, module=module,
                             backends=tuple(config.get("backends", ("threads", "torchscript"))))
    stats = measure(fns, warmup=int(config.get("warmup", 3)), repeats=int(config.get("repeats", 15)),
                    inner=int(config.get("inner", 3)))
    base = stats["gen_serial"]["median_ms"]
    base_ts = stats.get("gen_serial_torchscript", {}).get("median_ms")
    recs = []
    for v, s in stats.items():
        if base_ts and v.endswith("_torchscript"):
            recs.append({"model": name, "quick": quick, "workers": W, "variant": v,
                         "metric": "speedup_vs_gen_serial_same_backend", "value": base_ts / s["median_ms"]})
        elif v.startswith("gen_") and v.endswith("_threads"):
            recs.append({"model": name, "quick": quick, "workers": W, "variant": v,
                         "metric": "speedup_vs_gen_serial_same_backend", "value": base / s["median_ms"]})
        extra = {k: info[v][k] for k in ("predicted_speedup", "parallel_stages", "cloned_nodes", "fallback")
                 if v in info}
        for metric, value in (("median_ms", s["median_ms"]), ("iqr_ms", s["iqr_ms"]),
                              ("speedup_vs_gen_serial", base / s["median_ms"])):
            recs.append({"model": name, "quick": quick, "workers": W, "variant": v,
                         "metric": metric, "value": value, **extra})
    return recs
