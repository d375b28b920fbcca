r"""``ort-context``: ORT's optimized graph costed with per-op times taken *inside* a graph.

``ort`` (:mod:`xflow.costs.ort_optimized`) costs the graph ORT runs with TASO's table: each op
configuration timed alone in a one-node session, its weights hot in the caches. On NASRNN that
table ranks the rewritten graphs no better than chance: alone, the ``MatMul`` over the 1024×512
weight that ``concat_matmul_add`` makes costs less than the two 512×512 MatMuls it replaces, so
the rewrite (two MatMuls and an Add into a Concat and one MatMul) looks like a gain; inside the
graph, where the other weights have pushed that one out of the caches since its last use, it costs
more than both, and the rewrite is a loss (tables ``costs.context_ops`` and ``costs.fidelity`` in
``docs/rl.md``). Here the table holds each configuration's time where it runs:

.. math:: c_{\mathrm{ctx}}(G) = \sum_{v \in \mathrm{opt}_{\mathrm{ORT}}(G)} t_{\mathrm{ctx}}(\kappa(v)),
    \qquad t_{\mathrm{ctx}}(\kappa) = \frac{1}{|V_\kappa|} \sum_{v \in V_\kappa} \tilde t_{G_\kappa}(v)

with :math:`\kappa(v)` the node's configuration (:func:`xflow.costs.optable.op_config`), :math:`G_\kappa`
the first graph costed that contains :math:`\kappa`, :math:`V_\kappa` its nodes of that
configuration and :math:`\tilde t_G(v)` node :math:`v`'s median kernel time in :math:`G`
(:func:`xflow.runtime.node_profile.node_times`: ORT's profiler, the optimized graph run as ORT runs
it). A graph with no configuration missing from the table costs no run at all, as in TASO; a graph
with new ones is profiled once (warm-up + ``runs`` runs) and only its new configurations enter the
table (the first graph costed therefore costs exactly its profiled kernel sum).

Cost per graph: nothing for a known graph or one of known configurations; one profiled session
(``warmup + runs`` runs of the graph) for one with new configurations: cheap on NASRNN-sized
graphs, seconds on Inception-v3 (at one thread), so a reward for training keeps to ``ort``.

Differences from ``ort`` (and TASO): times are kernel durations inside a graph (ORT's profiler, wall
clock, µs resolution), not one-node sessions minus an empty one; a configuration's time is the
context of the first graph that had it, so it depends on the order graphs are costed in (the table
is kept on disk, so each machine fixes it once); the executor's work between nodes is in neither.
Nodes that have no configuration (a dynamic shape, a subgraph) cost 0, as in ``ort``.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import onnx

from xflow import paths
from xflow.costs.disk_cache import load_costs, store_costs
from xflow.costs.ort_optimized import CACHE_VERSION, OrtOptimizedCost, optimized_model, release_heap
from xflow.costs.optable import OPTABLE_VERSION
from xflow.costs.profiles import device_slug
from xflow.graphs.hashing import HASH_VERSION
from xflow.graphs.ir import Graph, attrs, ins
from xflow.runtime.device import describe_device
from xflow.runtime.node_profile import node_times

__all__ = ["OrtContextCost", "CONTEXT_VERSION", "configurations"]

log = logging.getLogger(__name__)

#: Version of how an in-context time is obtained (part of the table's and the costs' file names).
CONTEXT_VERSION = 1


class OrtContextCost(OrtOptimizedCost):
    """Sum of in-graph per-op times (ms) over ORT's optimized graph (see the module docstring).

    Args:
        level: the ORT optimization level the backend runs at (``all``).
        threads: intra-op threads of the profiled sessions.
        device: ``cpu`` or ``cuda``.
        warmup, runs: of each profiled graph (:func:`~xflow.runtime.node_profile.node_times`).
        persist: keep the table and the costs on disk.
    """

    name = "ort-context"

    def __init__(self, *, level: str = "all", threads: int = 1, device: str = "cpu", warmup: int = 10,
                 runs: int = 50, persist: bool = True) -> None:
        super().__init__(level=level, threads=threads, device=device, persist=persist)
        self.warmup, self.runs = int(warmup), int(runs)
        self._table: dict[str, float] | None = None
        self.profiled = 0  #: graphs profiled by this instance (each brought new configurations)

    def __repr__(self) -> str:
        return f"OrtContextCost(level={self.level!r}, threads={self.threads}, device={self.device!r})"

    # -- disk ---------------------------------------------------------------------------------
    def _stem(self) -> str:
        import onnxruntime as ort

        slug = device_slug(describe_device(self.device).label())
        return (f"{slug}-{self.level}-t{self.threads}-ort{ort.__version__}-x{CONTEXT_VERSION}-c{CACHE_VERSION}"
                f"-o{OPTABLE_VERSION}-h{HASH_VERSION}")

    def _disk_path(self) -> Path:
        return paths.cache_dir("costs", "ort-context") / f"{self._stem()}-costs.json"

    def _table_path(self) -> Path:
        return paths.cache_dir("costs", "ort-context") / f"{self._stem()}-ops.json"

    @property
    def table(self) -> dict[str, float]:
        """``{configuration key: ms}`` in context (read from disk on first use; an unreadable file
        is rebuilt)."""
        if self._table is None:
            self._table = load_costs(self._table_path(), "in-context op table") if self.persist else {}
        return self._table

    def _save_table(self, new: dict[str, float]) -> None:
        """Add ``new`` to the table; on disk, an entry another process stored meanwhile wins (a
        configuration keeps the time of the first graph profiled for it)."""
        if self.persist:
            new = store_costs(self._table_path(), new, "in-context op table", keep_existing=True)
        self.table.update(new)

    # -- costs --------------------------------------------------------------------------------
    def _analyze(self, graph: Graph, key: str, pending: dict[str, onnx.ModelProto] | None = None
                 ) -> list[dict[str, Any]]:
        """Rows ``{node, op, domain, key}`` of ``graph``'s optimized graph (remembered by hash); when a
        configuration is missing from the table, the optimized graph is profiled and its missing
        configurations are added."""
        rows = self._rows.get(key)
        if rows is not None and all(r["key"] is None or r["key"] in self.table for r in rows):
            return rows
        opt = optimized_model(graph, level=self.level, threads=self.threads, device=self.device)
        rows = [{"node": n.name, "op": n.op_type, "domain": n.domain, "key": k}
                for n, k in self.ops._configs(Graph.of(opt))]
        missing = {r["key"] for r in rows if r["key"] is not None and r["key"] not in self.table}
        if missing:
            # the optimized graph as it is (level disable: ORT's own names, which the rows carry)
            times = node_times(opt, level="disable", threads=self.threads, device=self.device,
                               warmup=self.warmup, runs=self.runs)
            per: dict[str, list[float]] = defaultdict(list)
            for r in rows:
                if r["key"] in missing and r["node"] in times:
                    per[r["key"]].append(times[r["node"]])
            unseen = missing - set(per)
            if unseen:  # a node the profiler did not report (ORT ran it away): it costs nothing
                log.warning("ort-context: %d configurations had no kernel event; they cost 0", len(unseen))
            self._save_table({**{k: sum(v) / len(v) for k, v in per.items()}, **{k: 0.0 for k in unseen}})
            self.profiled += 1
            log.info("ort-context: profiled a graph of %d nodes, %d new configurations", len(rows), len(missing))
        del opt
        release_heap()
        self._rows[key] = rows
        return rows

    def prepare(self, models: "list[Graph | onnx.ModelProto]") -> int:
        """Profile, in order, each of ``models`` that brings a configuration the table lacks (the
        order fixes which graph's context a configuration's time comes from); returns how many."""
        before = self.profiled
        for m in models:
            g = Graph.of(m)
            self._analyze(g, g.content_hash)
        return self.profiled - before

    def breakdown(self, model: Graph | onnx.ModelProto) -> list[dict[str, Any]]:
        """Per-node rows ``{node, op, domain, key, ms}`` of ORT's optimized graph, in-context times."""
        graph = Graph.of(model)
        rows = self._analyze(graph, graph.content_hash)
        return [{**r, "ms": self.table.get(r["key"], 0.0) if r["key"] is not None else 0.0} for r in rows]


def _inputs_text(graph: Graph, node) -> str:
    parts = []
    for t in ins(node):
        shp = graph.shape(t) if t else None
        if shp is not None:
            parts.append(("W" if graph.is_const(t) else "") + "×".join(str(d) for d in shp))
    return ", ".join(parts)


def _attrs_text(node) -> str:
    """Scalar and string attributes (``activation=Sigmoid``): what tells configurations of one op
    with the same input shapes apart."""
    keep = {k: v for k, v in sorted(attrs(node).items()) if isinstance(v, (str, int, float)) and len(str(v)) <= 24}
    return ", ".join(f"{k}={v}" for k, v in keep.items())


def configurations(graphs: Sequence[Graph | onnx.ModelProto], labels: Sequence[str] | None = None, *,
                   alone: OrtOptimizedCost | None = None, context: OrtContextCost | None = None
                   ) -> list[dict[str, Any]]:
    """One row per op configuration of ``graphs``' optimized graphs, slowest in the graph first:
    ``op``, ``inputs`` (shapes; ``W`` marks a constant), ``attrs``, ``nodes`` (over all graphs),
    ``first`` (the label of the first graph that has it), ``alone_ms`` (the one-node table of
    ``ort``), ``context_ms`` (the in-graph table of ``ort-context``) and ``context_over_alone``.
    Both tables are filled for the graphs in order first (``prepare``)."""
    alone = alone or OrtOptimizedCost()
    context = context or OrtContextCost()
    graphs = [Graph.of(g) for g in graphs]
    labels = list(labels) if labels is not None else [f"graph {i}" for i in range(len(graphs))]
    alone.prepare(graphs)
    context.prepare(graphs)
    rows: dict[str, dict[str, Any]] = {}
    for g, label in zip(graphs, labels):
        by_node = {r["node"]: r for r in alone.breakdown(g)}
        opt = None
        for r in context.breakdown(g):
            k = r["key"]
            if k is None:
                continue
            if k not in rows:
                if opt is None:
                    opt = alone.optimized(g)
                node = opt.node(r["node"])
                rows[k] = {"key": k, "op": r["op"], "inputs": _inputs_text(opt, node), "attrs": _attrs_text(node),
                           "first": label, "nodes": 0, "alone_ms": by_node[r["node"]]["ms"], "context_ms": r["ms"]}
            rows[k]["nodes"] += 1
        del opt
    for r in rows.values():
        r["context_over_alone"] = r["context_ms"] / r["alone_ms"] if r["alone_ms"] > 0 else float("nan")
    return sorted(rows.values(), key=lambda r: -r["context_ms"])
