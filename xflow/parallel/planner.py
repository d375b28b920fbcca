"""The planner: regions → clusters → per-region hybrid decision → safety valve → :class:`Plan`.

Modes:

``serial``  everything on the calling thread with 1 intra-op thread (the reference).
``intra``   everything on the calling thread with ``workers`` intra-op threads.
``branch``  regions with independent branches run their clusters on ``workers`` threads with 1
            intra-op thread each (Ramiel); the rest runs serially on 1 thread.
``hybrid``  per region, the fastest of branch parallelism (1 thread per worker) and running the
            region serially with 1 or ``workers`` intra-op threads; serial segments also get the
            faster thread count. Uses the per-thread-count costs (MEASUREMENTS.md: intra-op
            threading alone gives 1.5–1.8× on 2 idle cores, but little on small feature maps).

Safety valve: when the predicted gain over the mode's serial baseline (1 thread for ``branch``;
the faster of 1 and ``workers`` threads for ``hybrid``) is below ``min_gain``, that serial
baseline plan is emitted instead (``plan.fallback = True``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from xflow.errors import UnknownName
from xflow.parallel.cluster import clone_nodes, find_regions, linear_clustering, merge_clusters
from xflow.parallel.dataflow import DataflowGraph
from xflow.parallel.schedule import Cluster, Plan, Stage, simulate_stage

__all__ = ["PlanConfig", "make_plan", "MODES"]

log = logging.getLogger(__name__)

MODES = ("serial", "intra", "branch", "hybrid")


@dataclass
class PlanConfig:
    """Knobs of the planner (all recorded in the JSON record).

    Args:
        workers: number of worker threads (cores to use).
        mode: one of :data:`MODES`.
        sync_us: predicted cost of handing a tensor to another worker.
        fork_us: predicted cost of starting/joining one extra worker in a parallel stage.
        clone_max_us: only nodes at most this expensive are cloned.
        min_gain: safety valve; emit the serial baseline if predicted gain < this (0.05 = 5 %).
        cloning: enable node cloning.
        intra_margin: hybrid mode uses ``workers`` intra-op threads for a segment only when that is
            predicted at least this much faster than 1 thread (0.1 = 10 %): on a loaded machine
            multi-threaded ops degrade badly, so ties go to the single-thread schedule.
    """

    workers: int = 2
    mode: str = "hybrid"
    sync_us: float = 20.0
    fork_us: float = 40.0
    clone_max_us: float = 50.0
    min_gain: float = 0.05
    cloning: bool = True
    intra_margin: float = 0.1


def _serial_stage(g: DataflowGraph, ids: list[int], threads: int, decision: str = "") -> Stage:
    return Stage(kind="serial", clusters=[Cluster(nodes=list(ids))], threads=threads,
                 predicted_us=sum(g.nodes[v].cost_at(threads) for v in ids), decision=decision)


def _merge_serial(stages: list[Stage]) -> list[Stage]:
    out: list[Stage] = []
    for st in stages:
        if (out and st.kind == "serial" and out[-1].kind == "serial" and out[-1].threads == st.threads):
            prev = out[-1]
            prev.clusters[0].nodes += st.clusters[0].nodes
            prev.predicted_us += st.predicted_us
            if st.decision and st.decision not in prev.decision:
                prev.decision = (prev.decision + "; " + st.decision).strip("; ")
        else:
            out.append(st)
    return out


def _serial_plan(g: DataflowGraph, cfg: PlanConfig, threads: int, mode: str, fallback: bool,
                 info: dict) -> Plan:
    st = _serial_stage(g, list(range(len(g.nodes))), threads, "serial schedule")
    return Plan(stages=[st], workers=cfg.workers, mode=mode, predicted_us=st.predicted_us,
                serial_predicted_us=g.total_cost(1), fallback=fallback, info=info)


def make_plan(g: DataflowGraph, cfg: PlanConfig | None = None) -> Plan:
    """Schedule ``g`` (whose nodes carry costs) according to ``cfg``."""
    cfg = cfg or PlanConfig()
    if cfg.mode not in MODES:
        raise UnknownName(f"unknown mode {cfg.mode!r}; choose one of {', '.join(MODES)}")
    if cfg.workers < 1:
        raise ValueError("workers must be >= 1")
    W = cfg.workers
    info = {"serial_1thread_us": g.total_cost(1), f"serial_{W}threads_us": g.total_cost(W)}
    if cfg.mode == "serial" or W == 1:
        return _serial_plan(g, cfg, 1, cfg.mode, False, info)
    if cfg.mode == "intra":
        return _serial_plan(g, cfg, W, cfg.mode, False, info)
    hybrid = cfg.mode == "hybrid"

    def best_threads(ids: list[int]) -> int:
        if not hybrid:
            return 1
        t1 = sum(g.nodes[v].cost_at(1) for v in ids)
        tw = sum(g.nodes[v].cost_at(W) for v in ids)
        return W if tw * (1.0 + cfg.intra_margin) < t1 else 1

    stages: list[Stage] = []
    n_regions = n_par = 0
    for kind, ids in find_regions(g):
        ser_threads = best_threads(ids)
        if kind == "cut":
            stages.append(_serial_stage(g, ids, ser_threads))
            continue
        n_regions += 1
        chains = linear_clustering(g, ids, threads=1)
        t_ser = sum(g.nodes[v].cost_at(ser_threads) for v in ids)
        if len(chains) == 1:
            stages.append(_serial_stage(g, ids, ser_threads, "single chain"))
            continue
        clusters = merge_clusters(g, chains, W, threads=1, sync_us=cfg.sync_us, fork_us=cfg.fork_us)
        if cfg.cloning:
            clusters = clone_nodes(g, clusters, max_cost_us=cfg.clone_max_us, threads=1,
                                   sync_us=cfg.sync_us, fork_us=cfg.fork_us)
        t_par = simulate_stage(g, clusters, threads=1, sync_us=cfg.sync_us, fork_us=cfg.fork_us).makespan
        alts = {"branch_1thread": t_par, f"serial_{ser_threads}thread": t_ser}
        if t_par < t_ser:
            n_par += 1
            stages.append(Stage(kind="parallel", clusters=clusters, threads=1, predicted_us=t_par,
                                alternatives_us=alts,
                                decision=f"branches {t_par:.0f}us < serial@{ser_threads}thr {t_ser:.0f}us"))
        else:
            st = _serial_stage(g, ids, ser_threads,
                               f"serial@{ser_threads}thr {t_ser:.0f}us <= branches {t_par:.0f}us")
            st.alternatives_us = alts
            stages.append(st)
    stages = _merge_serial(stages)
    total = sum(s.predicted_us for s in stages)
    info.update({"regions": n_regions, "parallel_regions": n_par})
    base_threads = W if hybrid and g.total_cost(W) * (1.0 + cfg.intra_margin) < g.total_cost(1) else 1
    base = g.total_cost(base_threads)
    info["baseline_us"] = base
    info["baseline_threads"] = base_threads
    info["predicted_gain"] = base / total - 1.0 if total > 0 else 0.0
    if n_par == 0 or base / total < 1.0 + cfg.min_gain:
        log.info("safety valve: predicted gain %.3f < %.3f, emitting the serial schedule",
                 info["predicted_gain"], cfg.min_gain)
        info["safety_valve"] = True
        return _serial_plan(g, cfg, base_threads, cfg.mode, True, info)
    info["safety_valve"] = False
    return Plan(stages=stages, workers=W, mode=cfg.mode, predicted_us=total,
                serial_predicted_us=g.total_cost(1), info=info)
