"""Schedule data structures (plan → stages → clusters) and the makespan simulator.

A :class:`Plan` runs its :class:`Stage` s one after the other (fork–join). A *serial* stage runs
its nodes on the calling thread with ``threads`` intra-op threads. A *parallel* stage runs one
:class:`Cluster` per worker (cluster 0 on the calling thread), each worker on one intra-op thread;
a tensor produced in one cluster and read in another is handed over through a future.

The predicted time of a parallel stage is obtained by simulating the workers (each executes its
nodes in order; a node starts when its worker is free and its inputs are ready, plus a
synchronisation delay ``sync_us`` for inputs coming from another worker) plus a fork/join overhead
``fork_us`` per extra worker.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xflow.parallel.dataflow import DataflowGraph

__all__ = ["Cluster", "Stage", "Plan", "simulate_stage", "StageTimeline", "cut_tasks", "comm_cost"]


@dataclass
class Cluster:
    """The nodes one worker executes in a parallel stage, in execution order.

    ``clones`` lists node ids that this cluster recomputes although another cluster owns them
    (node cloning removes a cross-cluster dependency at the price of duplicate work).
    """

    nodes: list[int]
    clones: list[int] = field(default_factory=list)

    def cost(self, g: DataflowGraph, threads: int = 1) -> float:
        """Total node cost (µs) of the cluster."""
        return sum(g.nodes[i].cost_at(threads) for i in self.nodes)


@dataclass
class Stage:
    """One fork–join step of the plan."""

    kind: str  # "serial" | "parallel"
    clusters: list[Cluster]
    threads: int = 1
    predicted_us: float = 0.0
    alternatives_us: dict[str, float] = field(default_factory=dict)
    decision: str = ""

    @property
    def node_ids(self) -> list[int]:
        """Owned (non-clone) node ids of the stage, sorted."""
        out: set[int] = set()
        for c in self.clusters:
            out.update(i for i in c.nodes if i not in c.clones)
        return sorted(out)


@dataclass
class Plan:
    """A complete schedule of a dataflow graph on ``workers`` workers."""

    stages: list[Stage]
    workers: int
    mode: str
    predicted_us: float
    serial_predicted_us: float
    fallback: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def predicted_speedup(self) -> float:
        """Predicted serial time (1 intra-op thread) / predicted plan time."""
        return self.serial_predicted_us / self.predicted_us if self.predicted_us > 0 else 1.0

    @property
    def n_clones(self) -> int:
        """Number of cloned node instances over all stages."""
        return sum(len(c.clones) for s in self.stages for c in s.clusters)


@dataclass
class StageTimeline:
    """Simulated start/finish (µs from stage start) of every node instance: (worker, node, start, end)."""

    events: list[tuple[int, int, float, float]]
    makespan: float


def comm_cost(g: DataflowGraph, u: int, *, sync_us: float, comm_bytes_per_us: float | None) -> float:
    """Communication (edge) weight of handing node ``u``'s output to another worker:
    ``sync_us + out_bytes(u) / comm_bytes_per_us`` (the second term only with a bandwidth)."""
    if comm_bytes_per_us:
        return sync_us + g.nodes[u].out_bytes / comm_bytes_per_us
    return sync_us


def simulate_stage(g: DataflowGraph, clusters: list[Cluster], *, threads: int = 1,
                   sync_us: float = 20.0, fork_us: float = 30.0,
                   comm_bytes_per_us: float | None = None) -> StageTimeline:
    """Simulate the workers of a parallel stage and return the timeline.

    Each worker runs its cluster's nodes in order. Node ``v`` on worker ``w`` starts at
    ``max(free[w], max_u ready(u, w))`` where ``ready(u, w) = finish(u)``, plus the edge's
    communication weight (:func:`comm_cost`: ``sync_us`` + bytes / bandwidth) if ``u`` ran on
    another worker; inputs produced before the stage are ready at 0. Every worker but the first
    starts after ``fork_us`` (thread hand-off) and the stage ends ``fork_us`` after the last worker
    when more than one worker is used. Raises ``ValueError`` on a cyclic (deadlocking) assignment.
    """
    where: dict[int, list[int]] = {}
    for w, c in enumerate(clusters):
        for v in c.nodes:
            where.setdefault(v, []).append(w)
    finish: dict[tuple[int, int], float] = {}
    free = [0.0 if w == 0 else fork_us for w in range(len(clusters))]
    pos = [0] * len(clusters)
    events: list[tuple[int, int, float, float]] = []
    remaining = sum(len(c.nodes) for c in clusters)
    while remaining:
        progressed = False
        for w, c in enumerate(clusters):
            while pos[w] < len(c.nodes):
                v = c.nodes[pos[w]]
                start = free[w]
                ok = True
                for u in g.preds[v]:
                    if u not in where:
                        continue  # produced before this stage
                    if (u, w) in finish:
                        start = max(start, finish[(u, w)])
                        continue
                    if w in where[u]:
                        ok = False  # same worker, later in order: impossible in a valid order
                        break
                    done = [finish[(u, x)] for x in where[u] if (u, x) in finish]
                    if not done:
                        ok = False
                        break
                    start = max(start, min(done) + comm_cost(g, u, sync_us=sync_us,
                                                             comm_bytes_per_us=comm_bytes_per_us))
                if not ok:
                    break
                end = start + g.nodes[v].cost_at(threads)
                finish[(v, w)] = end
                free[w] = end
                events.append((w, v, start, end))
                pos[w] += 1
                remaining -= 1
                progressed = True
        if not progressed:
            raise ValueError("cluster assignment deadlocks (cyclic cross-cluster dependencies)")
    makespan = max(free) if free else 0.0
    if len(clusters) > 1:
        makespan += fork_us
    return StageTimeline(events=events, makespan=makespan)


def cut_tasks(g: DataflowGraph, clusters: list[Cluster]) -> list[tuple[int, list[int]]]:
    """Cut each cluster of a parallel stage into *tasks* at its cross-cluster hand-overs.

    A task ends after a node whose output another cluster reads, and a new task starts before a
    node that reads another cluster's output, so a task never waits in the middle. Returns
    ``(cluster index, node ids)`` in predicted start order (the makespan simulation), which is a
    deadlock-free order to start them in (used by the ``torchscript`` backend's ``fork`` driver and
    the ONNX Runtime cluster runner).
    """
    owner: dict[str, int] = {}
    for ci, c in enumerate(clusters):
        for v in c.nodes:
            if v in c.clones:
                continue
            for o in g.nodes[v].outputs:
                if o:
                    owner[o] = ci
    local = [set(o for v in c.nodes for o in g.nodes[v].outputs if o) for c in clusters]
    tasks: list[tuple[int, list[int]]] = []
    for ci, c in enumerate(clusters):
        cur: list[int] = []
        for v in c.nodes:
            reads_cross = any(i in owner and i not in local[ci] for i in g.nodes[v].inputs)
            if reads_cross and cur:
                tasks.append((ci, cur))
                cur = []
            cur.append(v)
            feeds_other = any(
                o and owner.get(o) == ci and v not in c.clones and any(
                    o in g.nodes[u].inputs for cj, c2 in enumerate(clusters) if cj != ci
                    and o not in local[cj] for u in c2.nodes)
                for o in g.nodes[v].outputs)
            if feeds_other:
                tasks.append((ci, cur))
                cur = []
        if cur:
            tasks.append((ci, cur))
    tl = simulate_stage(g, clusters)
    start: dict[tuple[int, int], float] = {}
    for w, v, s, _e in tl.events:
        start.setdefault((w, v), s)
    tasks.sort(key=lambda t: (start.get((t[0], t[1][0]), 0.0), t[0], t[1][0]))
    return tasks
