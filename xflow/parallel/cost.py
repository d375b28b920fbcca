"""Per-operator costs: measured on this device (cached) or from an analytic model.

``measured_costs`` runs the very lines the code generator emits, node by node, on random inputs
with 1 and with ``W`` intra-op threads and stores the median time per node (µs) under
``cache_dir('parallel', 'profiles')`` keyed by model hash, thread count and device; a second call is
free. ``analytic_costs`` estimates

    t(v, T) = overhead + flops(v) / (rate · s_T(v)) + bytes_out(v) / bandwidth

where ``s_T`` is the intra-op speed-up at ``T`` threads, growing with the op's work
(``1 + (T-1)·0.8·w/(w+w0)``): small ops do not scale. The analytic model is deterministic (tests);
the measured profile is what the benchmark uses (see MEASUREMENTS.md: analytic models mislead).
"""
from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Sequence

from xflow.parallel.dataflow import DataflowGraph

__all__ = ["analytic_costs", "measured_costs", "apply_costs", "measured_overheads"]

log = logging.getLogger(__name__)

RATE_FLOPS_PER_US = 30e3      # 30 GFLOP/s on one core
BANDWIDTH_BYTES_PER_US = 10e3  # 10 GB/s
OVERHEAD_US = 6.0
SCALE_W0 = 4e6


def analytic_costs(g: DataflowGraph, threads: Sequence[int] = (1, 2)) -> dict[str, dict[int, float]]:
    """Analytic cost (µs) of every node at each thread count, by node name."""
    out: dict[str, dict[int, float]] = {}
    for n in g.nodes:
        if n.op in ("Identity", "Dropout"):
            out[n.name] = {t: 0.5 for t in threads}
            continue
        per = {}
        for t in threads:
            s = 1.0 + (t - 1) * 0.8 * n.flops / (n.flops + SCALE_W0)
            per[t] = OVERHEAD_US + n.flops / (RATE_FLOPS_PER_US * s) + n.out_bytes / BANDWIDTH_BYTES_PER_US
        out[n.name] = per
    return out


def apply_costs(g: DataflowGraph, costs: dict[str, dict[int, float]]) -> None:
    """Store ``costs`` (node name → {threads: µs}) on the nodes of ``g``."""
    for n in g.nodes:
        if n.name in costs:
            n.cost = {int(k): float(v) for k, v in costs[n.name].items()}


def measured_costs(g: DataflowGraph, threads: Sequence[int] = (1, 2), *, repeats: int = 7,
                   warmup: int = 2, use_cache: bool = True, seed: int = 0,
                   calibrate: bool = True) -> dict[str, dict[int, float]]:
    """Measured time (µs) of every node at each intra-op thread count (cached).

    Executes the generated line of each node (same code the generated module runs) in topological
    order; inputs are seeded random tensors of the graph input shapes; a node's cost is its
    fastest of ``repeats`` runs. With ``calibrate``, the whole sequence is then also timed end to
    end at each thread count (interleaved) and the node costs at that count are scaled by
    ``median(end_to_end) / sum(per-node costs)``: timing ops one by
    one with hot threads flatters multi-threaded execution on a busy machine, and the planner's
    hybrid decision must see the real cost. The factors are stored under the key
    ``"_calibration"``.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    from xflow.parallel.naming import Names, node_lines
    from xflow.paths import cache_dir
    from xflow.runtime.device import describe_device

    if g.source != "onnx":
        raise NotImplementedError("measured profiles need an ONNX graph; use analytic_costs for fx")
    dev = describe_device("cpu").label().replace(" ", "_").replace("/", "_")[:60]
    key = f"{g.content_hash}_{'-'.join(map(str, threads))}_{repeats}_{int(calibrate)}min_{dev}.json"
    path = cache_dir("parallel", "profiles") / key
    if use_cache:
        from xflow.safeio import read_checked_json

        raw = read_checked_json(path)  # a truncated/corrupt profile is reported, removed, re-measured
        if isinstance(raw, dict):
            try:
                return {k: {int(t): float(v) for t, v in d.items()} for k, d in raw.items()}
            except (AttributeError, TypeError, ValueError):
                from xflow.safeio import discard_corrupt

                discard_corrupt(path, "not a profile")

    names = Names(g)
    lines = node_lines(g, names)
    codes = [compile(ln, f"<node {n.name}>", "exec") for ln, n in zip(lines, g.nodes)]

    class _W:  # weights holder standing in for ``self`` of the generated Kernels
        pass

    holder = _W()
    for onnx_name, attr in names.weights().items():
        setattr(holder, attr, torch.from_numpy(g.initializers[onnx_name].copy()))
    glob = {"torch": torch, "F": F, "self": holder}
    rng = np.random.default_rng(seed)
    feeds = {}
    for i in g.inputs:
        dt = np.dtype(g.dtypes.get(i, np.float32))
        arr = rng.standard_normal(g.shapes[i]).astype(dt) if dt.kind == "f" else \
            np.zeros(g.shapes[i], dtype=dt)
        feeds[names.var(i)] = torch.from_numpy(arr)
    prev = torch.get_num_threads()
    samples: dict[int, list[list[float]]] = {t: [[] for _ in g.nodes] for t in threads}
    out: dict[str, dict[int, float]] = {}
    try:
        with torch.no_grad():
            for r in range(warmup + repeats):
                for t in threads:  # interleave thread counts
                    torch.set_num_threads(t)
                    env = dict(feeds)
                    for k, code in enumerate(codes):
                        t0 = time.perf_counter()
                        exec(code, glob, env)  # noqa: S102 - generated by us
                        dt_us = (time.perf_counter() - t0) * 1e6
                        if r >= warmup:
                            samples[t][k].append(dt_us)
        # per node the minimum over repeats: interference on a shared machine only adds time, so
        # the minimum is the most faithful *relative* cost; calibration restores the scale
        out = {n.name: {t: float(min(samples[t][k])) for t in threads}
               for k, n in enumerate(g.nodes)}
        if calibrate:
            totals: dict[int, list[float]] = {t: [] for t in threads}
            with torch.no_grad():
                for r in range(1 + max(3, repeats // 2)):
                    for t in threads:
                        torch.set_num_threads(t)
                        env = dict(feeds)
                        t0 = time.perf_counter()
                        for code in codes:
                            exec(code, glob, env)  # noqa: S102
                        if r:
                            totals[t].append((time.perf_counter() - t0) * 1e6)
            factors = {}
            for t in threads:
                s = sum(out[n.name][t] for n in g.nodes)
                factors[t] = float(statistics.median(totals[t]) / s) if s > 0 else 1.0
                for n in g.nodes:
                    out[n.name][t] *= factors[t]
            out["_calibration"] = factors
            log.info("end-to-end calibration factors %s", factors)
    finally:
        torch.set_num_threads(prev)
    from xflow.safeio import write_checked_json

    write_checked_json(path, out)
    log.info("profiled %d nodes at threads %s -> %s", len(g.nodes), list(threads), path)
    return out


def measured_overheads(workers: int = 2, *, runs: int = 60) -> dict[str, float]:
    """Measured thread hand-off cost on this machine now: ``{"fork_us", "sync_us"}``.

    ``fork_us`` is the mean round trip of submitting a no-op to a warm thread pool and waiting
    for it (what a parallel stage pays per extra worker); ``sync_us`` is the mean latency from
    ``Future.set_result`` on a worker to the waiting thread waking up. Means, not medians: the
    expected cost includes the occasional wake-up that waits for a scheduler slice. On a busy
    machine both grow by orders of magnitude, which makes the planner (and its safety valve) more
    conservative.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    fork: list[float] = []
    sync: list[float] = []
    with ThreadPoolExecutor(max(workers - 1, 1)) as pool:
        pool.submit(lambda: None).result()
        for _ in range(runs):
            t0 = time.perf_counter()
            pool.submit(lambda: None).result()
            fork.append((time.perf_counter() - t0) * 1e6)
            f: Future = Future()
            stamp: list[float] = []

            def setter(fut: Future = f, st: list[float] = stamp) -> None:
                st.append(time.perf_counter())
                fut.set_result(None)

            pool.submit(setter)
            f.result()
            sync.append((time.perf_counter() - stamp[0]) * 1e6)
    return {"fork_us": float(statistics.mean(fork)), "sync_us": float(statistics.mean(sync))}
