"""The planner: clusters → stages → per-region hybrid decision → safety valve → :class:`Plan`.

Clustering (``PlanConfig.clustering``): ``"ramiel"`` clusters the whole graph (linear clustering
with communication weights, iterative merging, cloning); ``"regions"`` clusters each fork–join
region separately (the earlier method, kept for comparison).

Modes:

``serial``  everything on the calling thread with 1 intra-op thread (the reference).
``intra``   everything on the calling thread with ``workers`` intra-op threads.
``branch``  Ramiel: the clusters run on ``workers`` threads with 1 intra-op thread each — with
            ``"ramiel"`` clustering as one whole-graph stage whose clusters hand tensors over
            through futures; with ``"regions"`` per region, the rest serially.
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
from xflow.parallel.cluster import (clone_nodes, find_regions, linear_clustering, merge_clusters,
                                    merge_iterative)
from xflow.parallel.dataflow import DataflowGraph
from xflow.parallel.schedule import Cluster, Plan, Stage, simulate_stage

__all__ = ["PlanConfig", "make_plan", "MODES", "CLUSTERINGS"]

log = logging.getLogger(__name__)

MODES = ("serial", "intra", "branch", "hybrid")
CLUSTERINGS = ("ramiel", "regions")


@dataclass
class PlanConfig:
    """Knobs of the planner (all recorded in the JSON record).

    Args:
        workers: number of worker threads (cores to use).
        mode: one of :data:`MODES`.
        sync_us: predicted cost of handing a tensor to another worker (synchronisation part of
            an edge's communication weight).
        fork_us: predicted cost of starting/joining one extra worker in a parallel stage.
        clone_max_us: when set, a clone (with the ancestors it drags along) may cost at most this;
            by default any clone that shortens the simulated makespan by ``clone_min_gain_us``.
        min_gain: safety valve; emit the serial baseline if predicted gain < this (0.05 = 5 %).
        cloning: enable node cloning.
        intra_margin: hybrid mode uses ``workers`` intra-op threads for a segment only when that is
            predicted at least this much faster than 1 thread (0.1 = 10 %): on a loaded machine
            multi-threaded ops degrade badly, so ties go to the single-thread schedule.
        clustering: ``"ramiel"`` — linear clustering of the *whole graph* with communication
            weights, then iterative merging (``branch`` mode runs the result as one parallel stage;
            ``hybrid`` splits it at cut nodes into fork–join stages and decides per region);
            ``"regions"`` — the earlier method: per fork–join region, node costs only, LPT/greedy
            merging.
        comm_bytes_per_us: bandwidth of a hand-over between cores (bytes/µs) in the edge weights
            (``None``: synchronisation cost only).
        clone_min_gain_us: smallest predicted makespan reduction a clone must bring.
    """

    workers: int = 2
    mode: str = "hybrid"
    sync_us: float = 20.0
    fork_us: float = 40.0
    clone_max_us: float | None = None
    min_gain: float = 0.05
    cloning: bool = True
    intra_margin: float = 0.1
    clustering: str = "ramiel"
    comm_bytes_per_us: float | None = 20e3
    clone_min_gain_us: float = 1.0


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

    if cfg.clustering not in CLUSTERINGS:
        raise UnknownName(f"unknown clustering {cfg.clustering!r}; choose one of {', '.join(CLUSTERINGS)}")
    sim = dict(threads=1, sync_us=cfg.sync_us, fork_us=cfg.fork_us, comm_bytes_per_us=cfg.comm_bytes_per_us)
    info["sim"] = {k: v for k, v in sim.items() if k != "threads"}
    clone_kw = dict(max_cost_us=cfg.clone_max_us, min_gain_us=cfg.clone_min_gain_us, **sim)
    stages: list[Stage] = []
    n_regions = n_par = 0
    whole: list[Cluster] | None = None
    if cfg.clustering == "ramiel":
        chains = linear_clustering(g, range(len(g.nodes)), threads=1, sync_us=cfg.sync_us,
                                   comm_bytes_per_us=cfg.comm_bytes_per_us)
        whole = merge_iterative(g, chains, W, **sim)
        info.update({"linear_clusters": len(chains), "merged_clusters": len(whole)})
        if not hybrid:  # Ramiel: the whole graph is one parallel stage
            clusters = clone_nodes(g, whole, **clone_kw) if cfg.cloning else whole
            t_par = simulate_stage(g, clusters, **sim).makespan if len(clusters) > 1 else g.total_cost(1)
            t_ser = g.total_cost(1)
            n_regions = 1
            if len(clusters) > 1 and t_par < t_ser:
                n_par = 1
                stages.append(Stage(kind="parallel", clusters=clusters, threads=1, predicted_us=t_par,
                                    alternatives_us={"branch_1thread": t_par, "serial_1thread": t_ser},
                                    decision=f"whole graph: branches {t_par:.0f}us < serial {t_ser:.0f}us"))
            else:
                stages.append(_serial_stage(g, list(range(len(g.nodes))), 1, "single chain"))
    if not stages:
        owner = {v: ci for ci, c in enumerate(whole or []) for v in c.nodes}
        for kind, ids in find_regions(g):
            ser_threads = best_threads(ids)
            if kind == "cut":
                stages.append(_serial_stage(g, ids, ser_threads))
                continue
            n_regions += 1
            t_ser = sum(g.nodes[v].cost_at(ser_threads) for v in ids)
            if whole is not None:  # the whole-graph clusters, restricted to this region
                parts: dict[int, list[int]] = {}
                for v in ids:
                    parts.setdefault(owner[v], []).append(v)
                clusters = sorted((Cluster(nodes=sorted(p)) for p in parts.values()),
                                  key=lambda c: -c.cost(g, 1))
            else:
                chains = linear_clustering(g, ids, threads=1)
                if len(chains) == 1:
                    stages.append(_serial_stage(g, ids, ser_threads, "single chain"))
                    continue
                clusters = merge_clusters(g, chains, W, **sim)
            if len(clusters) == 1:
                stages.append(_serial_stage(g, ids, ser_threads, "single cluster"))
                continue
            if cfg.cloning:
                clusters = clone_nodes(g, clusters, **clone_kw)
            t_par = simulate_stage(g, clusters, **sim).makespan
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
