"""Predicted and measured schedules as timelines, Gantt charts and a cluster-coloured graph.

* :func:`predicted_timeline` — the planner's simulated schedule, stage after stage.
* :func:`measured_timeline` — runs a traced build of the generated module (threads backend) and
  returns when each node really ran on which thread.
* :func:`plot_gantt` — one row per worker, one bar per node (matplotlib).
* :func:`render_clusters` — the dataflow graph with graphviz, nodes coloured by cluster, cloned
  nodes dashed, serial stages grey.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xflow.errors import GraphvizMissing
from xflow.parallel.codegen import generate, load_generated
from xflow.parallel.dataflow import DataflowGraph
from xflow.parallel.schedule import Plan, simulate_stage

__all__ = ["Event", "predicted_timeline", "measured_timeline", "plot_gantt", "render_clusters"]

_COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]


@dataclass
class Event:
    """One node execution: worker row, node id, op, start/end in ms from the start, stage index."""

    worker: int
    node: int
    op: str
    start_ms: float
    end_ms: float
    stage: int


def predicted_timeline(g: DataflowGraph, plan: Plan, *, sync_us: float | None = None,
                       fork_us: float | None = None) -> list[Event]:
    """The planner's predicted schedule (serial stages on worker 0 at their thread count), with
    the hand-off costs the planner used (``plan.info["sim"]``) unless given."""
    sim = dict(plan.info.get("sim", {}))
    sync_us = sim.get("sync_us", 20.0) if sync_us is None else sync_us
    fork_us = sim.get("fork_us", 40.0) if fork_us is None else fork_us
    comm = sim.get("comm_bytes_per_us")
    out: list[Event] = []
    t = 0.0
    for si, st in enumerate(plan.stages):
        if st.kind == "serial" or len(st.clusters) == 1:
            for v in st.clusters[0].nodes:
                c = g.nodes[v].cost_at(st.threads)
                out.append(Event(0, v, g.nodes[v].op, t / 1e3, (t + c) / 1e3, si))
                t += c
            continue
        tl = simulate_stage(g, st.clusters, threads=1, sync_us=sync_us, fork_us=fork_us, comm_bytes_per_us=comm)
        for w, v, s, e in tl.events:
            out.append(Event(w, v, g.nodes[v].op, (t + s) / 1e3, (t + e) / 1e3, si))
        t += tl.makespan
    return out


def measured_timeline(g: DataflowGraph, plan: Plan, inputs: tuple, *, runs: int = 3) -> list[Event]:
    """Run a traced threads-backend build ``runs`` times; return the events of the run with the
    median span (a typical run, not the luckiest)."""
    src = generate(g, plan, backend="threads", trace=True)
    mod, model = load_generated(src, g)
    stage_of = {v: si for si, st in enumerate(plan.stages) for c in st.clusters for v in c.nodes}
    traced: list[tuple[float, list[Event]]] = []
    try:
        model(*inputs)  # warm-up
        for _ in range(max(1, runs)):
            mod.TRACE.clear()
            model(*inputs)
            tr = list(mod.TRACE)
            t0 = min(x[2] for x in tr)
            rows: dict[int, int] = {}
            ev = []
            for tid, v, s, e in tr:
                w = rows.setdefault(tid, len(rows))
                ev.append(Event(w, v, g.nodes[v].op, (s - t0) * 1e3, (e - t0) * 1e3, stage_of.get(v, 0)))
            traced.append((max(x[3] for x in tr) - t0, ev))
    finally:
        model.close()
    traced.sort(key=lambda t: t[0])
    return traced[len(traced) // 2][1] if traced else []


def plot_gantt(events: list[Event], ax: Any = None, *, title: str = "", color_by: str = "op") -> Any:
    """Gantt chart: one row per worker, one bar per node, coloured by ``op`` or ``stage``."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 2.5))
    keys = sorted({getattr(e, color_by) for e in events}, key=str)
    cmap = {k: _COLORS[i % len(_COLORS)] for i, k in enumerate(keys)}
    for e in events:
        ax.barh(e.worker, e.end_ms - e.start_ms, left=e.start_ms, height=0.7,
                color=cmap[getattr(e, color_by)], edgecolor="none")
    workers = sorted({e.worker for e in events})
    ax.set_yticks(workers, [f"worker {w}" for w in workers])
    ax.invert_yaxis()
    ax.set_xlabel("time (ms)")
    if title:
        ax.set_title(title)
    if color_by == "op" and len(keys) <= 10:
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(color=cmap[k], label=str(k)) for k in keys], fontsize=7,
                  loc="upper right", ncol=min(len(keys), 5))
    return ax


def render_clusters(g: DataflowGraph, plan: Plan, path: str | Path, *, max_nodes: int = 400) -> Path:
    """Write the dataflow graph coloured by cluster (svg/png by suffix); cloned nodes dashed.

    Raises :class:`xflow.errors.GraphvizMissing` when the ``dot`` binary is absent.
    """
    import shutil

    import graphviz

    if shutil.which("dot") is None:
        raise GraphvizMissing("Graphviz 'dot' is not installed (apt-get install graphviz)")
    path = Path(path)
    dot = graphviz.Digraph(graph_attr={"rankdir": "TB", "fontsize": "10"},
                           node_attr={"shape": "box", "style": "filled", "fontsize": "8", "height": "0.2"})
    shown = set(range(min(len(g.nodes), max_nodes)))
    clones: list[tuple[int, int, int]] = []
    for si, st in enumerate(plan.stages):
        for ci, c in enumerate(st.clusters):
            color = "#DDDDDD" if st.kind == "serial" else _COLORS[ci % len(_COLORS)]
            for v in c.nodes:
                if v not in shown:
                    continue
                if v in c.clones:
                    clones.append((si, ci, v))
                    continue
                dot.node(f"n{v}", g.nodes[v].op, fillcolor=color,
                         fontcolor="black" if st.kind == "serial" else "white",
                         tooltip=g.nodes[v].name)
    for v in shown:
        for u in g.preds[v]:
            if u in shown:
                dot.edge(f"n{u}", f"n{v}")
    for si, ci, v in clones:
        dot.node(f"c{si}_{ci}_{v}", g.nodes[v].op + " (clone)", fillcolor=_COLORS[ci % len(_COLORS)],
                 style="filled,dashed", fontcolor="white")
        for u in g.preds[v]:
            if u in shown:
                dot.edge(f"n{u}", f"c{si}_{ci}_{v}", style="dashed")
    fmt = path.suffix.lstrip(".") or "svg"
    out = dot.render(filename=path.with_suffix("").name, directory=str(path.parent), format=fmt, cleanup=True)
    return Path(out)
