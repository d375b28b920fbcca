"""Per-operator costs: measured on this device (cached) or from the one roofline of the cost layer.

``measured_costs`` times the very kernels the code generator emits (the shared torch backend's
lowered program), kernel by kernel, with 1 and with ``W`` intra-op threads through the measurement
core (thread CPU time at 1 thread; contended multi-thread measurements flagged) and stores the
time per kernel (µs) under ``cache_dir('parallel', 'profiles')``; a second call is free.
``analytic_costs`` is :func:`xflow.costs.roofline.node_seconds` over the nominal CPU profile
(:func:`xflow.costs.nominal`):

    t(v, T) = max(flops(v) / (P · s_T(v)), bytes(v) / W) + o

where ``s_T`` is the profile's intra-op speed-up at ``T`` threads, growing with the op's work
(``1 + (T-1)·e·F/(F+F½)``): small ops do not scale. Shape-only ops cost nothing. The analytic
model is deterministic (tests); the measured profile is what the benchmark uses (see
MEASUREMENTS.md: analytic models mislead).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from xflow.costs.profiles import DeviceProfile, nominal
from xflow.costs.roofline import node_seconds
from xflow.graphs.opcost import FREE_OPS
from xflow.parallel.dataflow import DataflowGraph
from xflow.paths import cache_dir
from xflow.runtime import measure as measure_core  # measure looked up per call: tests substitute it
from xflow.runtime.backend_codegen import kernel_env
from xflow.runtime.device import describe_device
from xflow.runtime.measure import Variant
from xflow.safeio import discard_corrupt, read_checked_json, write_checked_json

__all__ = ["analytic_costs", "measured_costs", "apply_costs", "measured_overheads"]

log = logging.getLogger(__name__)


def _bytes(g: DataflowGraph, tensor: str) -> float:
    shp = g.shapes.get(tensor)
    if shp is None:
        return 0.0
    dt = g.dtypes.get(tensor)
    return float(np.prod(shp, dtype=np.float64)) * (np.dtype(dt).itemsize if dt is not None else 4)


def analytic_costs(g: DataflowGraph, threads: Sequence[int] = (1, 2),
                   profile: DeviceProfile | None = None) -> dict[str, dict[int, float]]:
    """Roofline cost (µs) of every node at each thread count, by node name (see module docstring)."""
    prof = profile or nominal("cpu")
    out: dict[str, dict[int, float]] = {}
    for n in g.nodes:
        if n.op in FREE_OPS:
            out[n.name] = {t: 0.0 for t in threads}
            continue
        b = sum(_bytes(g, t) for t in n.inputs if t) + (n.out_bytes or sum(_bytes(g, t) for t in n.outputs if t))
        out[n.name] = {t: 1e6 * node_seconds(prof, n.flops, b, t) for t in threads}
    return out


def apply_costs(g: DataflowGraph, costs: dict[str, dict[int, float]]) -> None:
    """Store ``costs`` (node name → {threads: µs}) on the nodes of ``g``."""
    for n in g.nodes:
        if n.name in costs:
            n.cost = {int(k): float(v) for k, v in costs[n.name].items()}


#: Bump when the profile format or method changes: older cached profiles are then re-measured.
PROFILE_VERSION = 2
#: A kernel measured this many times slower with more threads than with one (plus
#: :data:`CONTENTION_SLACK_US`) was measured under contention: its multi-thread cost is not used.
CONTENTION_RATIO = 1.5
CONTENTION_SLACK_US = 50.0


class _quiet_measure:
    """Silence the measurement core's per-run warnings while profiling hundreds of kernels; the
    profile records the machine's state itself (``_meta``)."""

    def __enter__(self) -> None:
        self._lg = logging.getLogger("xflow.runtime.measure")
        self._level = self._lg.level
        self._lg.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        self._lg.setLevel(self._level)


def _set_threads(n: int):
    import torch

    def f() -> None:
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    return f


def _profile_key(g: DataflowGraph, threads: Sequence[int], rounds: int, calibrate: bool) -> str:
    import torch

    dev = describe_device("cpu").label().replace(" ", "_").replace("/", "_")[:60]
    return (f"v{PROFILE_VERSION}_{g.content_hash}_{'-'.join(map(str, threads))}_{rounds}_{int(calibrate)}_"
            f"{dev}_torch{torch.__version__}.json")


def measured_costs(g: DataflowGraph, threads: Sequence[int] = (1, 2), *, rounds: int = 5,
                   warmup: int = 2, use_cache: bool = True, seed: int = 0,
                   calibrate: bool = True, repeats: int | None = None) -> dict[str, Any]:
    """Measured time (µs) of every kernel at each intra-op thread count, through the measurement core.

    Each kernel's statements (the very code generated modules run, from the shared torch backend)
    are timed on its real inputs (one forward pass on seeded random graph inputs provides them)
    with :func:`xflow.runtime.measure.measure`: the thread counts are interleaved rounds of one
    measurement; the **1-thread cost is thread CPU time** (descheduling on a shared machine does
    not count), multi-thread costs are wall time. A multi-thread cost more than
    :data:`CONTENTION_RATIO` × the 1-thread cost (+ :data:`CONTENTION_SLACK_US`) is physically
    implausible — it was measured while other processes held the cores (one such profile put a
    1×1 conv at 395 ms with 2 threads vs 1.0 ms with one) — so it is replaced by the 1-thread cost
    and listed in ``result["_meta"]["contended_kernels"]``; ``result["_meta"]["contended"]`` is set
    when any measurement found the machine busy or such kernels exist. Contended profiles are not
    served from the cache (the next call measures again).

    With ``calibrate`` the whole kernel sequence is also timed end to end at each thread count and
    the kernel costs at that count are scaled by ``end_to_end / sum(kernel costs)`` (factors under
    ``"_calibration"``): timing kernels one by one with hot caches is not what a full pass sees.
    Cached under ``cache_dir('parallel', 'profiles')`` by model hash, lowering, thread counts, device
    and torch version.
    """
    import torch

    if g.source != "onnx" or g.program is None:
        raise NotImplementedError("measured profiles need an ONNX graph; use analytic_costs for fx")
    rounds = int(repeats) if repeats is not None else int(rounds)
    threads = sorted({int(t) for t in threads})
    path = cache_dir("parallel", "profiles") / _profile_key(g, threads, rounds, calibrate)
    if use_cache and path.exists():
        raw = read_checked_json(path)  # a truncated/corrupt profile is reported, removed, re-measured
        if raw is not None:
            try:
                if not raw.get("_meta", {}).get("contended"):
                    return _decode(raw)
                log.info("cached profile %s was measured under contention: measuring again", path.name)
            except (ValueError, AttributeError, TypeError):
                discard_corrupt(path, "not a profile")
    p = g.program
    glob, _k = kernel_env(p)
    rng = np.random.default_rng(seed)
    feeds = {}
    for i in g.inputs:
        dt = np.dtype(g.dtypes.get(i, np.float32))
        arr = rng.standard_normal(g.shapes[i]).astype(dt) if dt.kind == "f" else np.zeros(g.shapes[i], dtype=dt)
        feeds[p.names.var(i)] = torch.from_numpy(arr)
    pro = [compile(ln, "<prologue>", "exec") for ln in p.prologue]
    codes = [compile(k.line, f"<kernel {k.name}>", "exec") for k in p.kernels]
    prev = torch.get_num_threads()
    out: dict[str, Any] = {}
    contended: list[str] = []
    busy = False
    try:
        with torch.no_grad(), _quiet_measure():
            env = dict(feeds)
            for c in pro + codes:  # one pass: every kernel's inputs
                exec(c, glob, env)  # noqa: S102 - generated by us
            for k, code, node in zip(p.kernels, codes, g.nodes):
                loc = {p.names.var(t): env[p.names.var(t)] for t in k.inputs}

                def run(code=code, loc=loc) -> None:
                    exec(code, glob, loc)  # noqa: S102

                vs = {f"t{t}": Variant(run, threads=1 if t == 1 else None, before=_set_threads(t))
                      for t in threads}
                m = measure_core.measure(vs, aa=False, warmup=warmup, rounds=rounds, clock="wall", seed=seed)
                busy |= m.busy
                cost = {t: m.median_ms(f"t{t}", "thread" if t == 1 else "wall") * 1e3 for t in threads}
                base = cost.get(1)
                if base is not None:
                    for t in threads:
                        if t > 1 and cost[t] > CONTENTION_RATIO * base + CONTENTION_SLACK_US:
                            contended.append(node.name)
                            cost[t] = base
                out[node.name] = cost
            if calibrate:
                def run_all() -> None:
                    e = dict(feeds)
                    for c in pro + codes:
                        exec(c, glob, e)  # noqa: S102

                vs = {f"t{t}": Variant(run_all, threads=1 if t == 1 else None, before=_set_threads(t))
                      for t in threads}
                m = measure_core.measure(vs, aa=False, warmup=1, rounds=max(3, rounds), clock="wall", seed=seed)
                busy |= m.busy
                factors = {}
                for t in threads:
                    e2e = m.median_ms(f"t{t}", "thread" if t == 1 else "wall") * 1e3
                    s = sum(out[n.name][t] for n in g.nodes)
                    factors[t] = float(e2e / s) if s > 0 else 1.0
                f1 = factors.get(1)
                for t in threads:
                    if f1 is not None and t > 1 and factors[t] > CONTENTION_RATIO * f1:
                        # the end-to-end pass at t threads was slowed by other processes: do not
                        # scale by it; t threads are assumed no faster than one
                        contended.append(f"<end-to-end at {t} threads: x{factors[t]:.2f}>")
                        for n in g.nodes:
                            out[n.name][t] = out[n.name][1]  # (1 precedes t: already scaled)
                        factors[t] = f1
                        continue
                    for n in g.nodes:
                        out[n.name][t] *= factors[t]
                out["_calibration"] = factors
                log.info("end-to-end calibration factors %s", factors)
    finally:
        torch.set_num_threads(prev)
    out["_meta"] = {"version": PROFILE_VERSION, "threads": threads, "rounds": rounds,
                    "contended": bool(busy or contended), "machine_busy": bool(busy),
                    "contended_kernels": contended, "kernels": len(g.nodes)}
    if out["_meta"]["contended"]:
        log.warning("profile measured under contention (machine busy: %s; %d kernel(s) with implausible "
                    "multi-thread costs replaced by their 1-thread cost)", busy, len(contended))

    write_checked_json(path, out)
    log.info("profiled %d kernels at threads %s -> %s", len(g.nodes), threads, path)
    return _decode(json.loads(json.dumps(out)))


def _decode(raw: dict[str, Any]) -> dict[str, Any]:
    """JSON profile → ``{name: {threads(int): us}}`` plus the ``_calibration`` / ``_meta`` entries."""
    out: dict[str, Any] = {}
    for k, d in raw.items():
        if k == "_calibration":
            out[k] = {int(t): float(v) for t, v in d.items()}
        elif k == "_meta":
            out[k] = d
        else:
            out[k] = {int(t): float(v) for t, v in d.items()}
    return out


def measured_overheads(workers: int = 2, *, runs: int = 30) -> dict[str, float]:
    """Measured thread hand-off cost on this machine now: ``{"fork_us", "sync_us"}``.

    ``fork_us`` is the mean wall time of submitting a no-op to a warm thread pool and waiting for it
    (what a parallel stage pays per extra worker), timed with the measurement core (``runs`` rounds,
    one call each); ``sync_us`` — a cross-worker hand-over through a future, one wake-up instead
    of the round trip's two — is half of it. Means, not medians: the expected cost includes the
    occasional wake-up that waits for a scheduler slice. On a busy machine both grow by orders of
    magnitude, which makes the planner (and its safety valve) more conservative.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(workers - 1, 1)) as pool:
        pool.submit(_noop).result()
        m = measure_core.measure({"fork": Variant(lambda: pool.submit(_noop).result(), threads=None)}, aa=False,
                    warmup=5, rounds=runs, inner=1, clock="wall")
    fork = float(m.times("fork", "wall").mean()) * 1e6
    return {"fork_us": fork, "sync_us": fork / 2.0}


def _noop() -> None:
    return None
