"""An ONNX Runtime cluster backend: the same plan, each cluster's work run by ORT sub-sessions on threads.

Where the generated PyTorch module runs a cluster's kernels as torch calls, :class:`OrtClusterRunner`
cuts every stage of a :class:`~xflow.parallel.schedule.Plan` into sub-models of the original ONNX
graph and runs them with ONNX Runtime:

* a serial stage is one sub-session with the stage's intra-op thread count;
* a parallel stage's clusters are cut into tasks at cross-cluster hand-overs
  (:func:`~xflow.parallel.schedule.cut_tasks`); every task is one sub-session (1 intra-op thread);
  cluster 0's tasks run on the calling thread, cluster *c*'s on worker thread *c*, each in order,
  and a task waits for the tensors other clusters hand over (``concurrent.futures.Future``).

Sub-sessions use ORT's full graph optimization, so each task pays its own layout conversions at
its boundaries (ORT's NCHWc blocking): the measured price of splitting an ORT graph (MEASUREMENTS.md:
one Inception block in two sub-models on two threads, 1.7×, vs 1.8–2.0× with 2 intra-op threads).
"""
from __future__ import annotations

from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from xflow.parallel.dataflow import DataflowGraph
from xflow.parallel.schedule import Plan, cut_tasks
from xflow.runtime.session import make_session

__all__ = ["OrtClusterRunner", "sub_model"]


def sub_model(model: Any, node_names: list[str], inputs: list[str], outputs: list[str],
              aliases: dict[str, str]) -> Any:
    """A standalone ``ModelProto`` of ``model``'s nodes ``node_names`` reading ``inputs`` and
    producing ``outputs`` (``Identity``/``Dropout`` forwarding resolved through ``aliases``)."""
    import onnx
    from onnx import helper

    g = model.graph
    want = set(node_names)
    nodes = []
    for n in g.node:
        if n.name in want:
            c = onnx.NodeProto()
            c.CopyFrom(n)
            c.input[:] = [aliases.get(i, i) for i in c.input]
            nodes.append(c)
    vi = {v.name: v for v in list(g.input) + list(g.value_info) + list(g.output)}
    inits = {t.name: t for t in g.initializer}
    used = {i for n in nodes for i in n.input if i}
    new_inits = [inits[t] for t in sorted(used) if t in inits]

    def info(name: str):
        if name in vi:
            v = onnx.ValueInfoProto()
            v.CopyFrom(vi[name])
            v.name = name
            return v
        raise KeyError(f"no type information for tensor {name!r}")

    graph = helper.make_graph(nodes, "cluster", [info(i) for i in inputs], [info(o) for o in outputs],
                              initializer=new_inits)
    m = helper.make_model(graph, opset_imports=list(model.opset_import))
    m.ir_version = model.ir_version
    return m


@dataclass
class _Task:
    cluster: int
    session: Any
    inputs: list[str]
    outputs: list[str]


class OrtClusterRunner:
    """Run ``plan`` on ``g`` with ONNX Runtime sub-sessions (see module docstring).

    ``runner(feeds) -> list[np.ndarray]`` (graph outputs in order); ``close()`` stops the threads.
    """

    def __init__(self, g: DataflowGraph, plan: Plan, *, level: str = "all") -> None:
        if g.program is None or g.model is None:
            raise ValueError("the ONNX Runtime cluster backend needs an ONNX dataflow graph (from_onnx)")
        p = g.program
        self.g, self.plan = g, plan
        aliases = p.aliases
        later_reads: list[set[str]] = []
        reads_per_stage = [{t for c in st.clusters for v in c.nodes for t in g.nodes[v].inputs}
                           for st in plan.stages]
        for si in range(len(plan.stages)):
            later = set(g.outputs)
            for sj in range(si + 1, len(plan.stages)):
                later |= reads_per_stage[sj]
            later_reads.append(later)
        self.stages: list[tuple[str, list[_Task]]] = []

        def build(ids: list[int], threads: int, needed_elsewhere: set[str]) -> _Task:
            made: set[str] = set()
            ins: list[str] = []
            onnx_nodes: list[str] = []
            for v in ids:
                k = p.kernels[v]
                for t in k.inputs:
                    if t not in made and t not in ins:
                        ins.append(t)
                made.update(k.outputs)
                onnx_nodes += k.nodes
            outs = sorted(t for t in made if t in needed_elsewhere)
            sm = sub_model(g.model, onnx_nodes, ins, outs, aliases)
            sess = make_session(sm, level=level, intra_threads=threads)
            return _Task(0, sess, ins, outs)

        for si, st in enumerate(plan.stages):
            if st.kind == "serial" or len(st.clusters) == 1:
                ids = [v for c in st.clusters for v in c.nodes]
                self.stages.append(("serial", [build(ids, st.threads, later_reads[si])]))
                continue
            tasks = cut_tasks(g, st.clusters)
            built: list[_Task] = []
            for ti, (ci, ids) in enumerate(tasks):
                others = set(later_reads[si])
                for tj, (cj, jds) in enumerate(tasks):
                    if tj != ti:
                        others |= {t for v in jds for t in g.nodes[v].inputs}
                t = build(ids, 1, others)
                t.cluster = ci
                built.append(t)
            self.stages.append(("parallel", built))
        workers = max((len(st.clusters) for st in plan.stages), default=1)
        self._pool = ThreadPoolExecutor(max(workers - 1, 1))

    def close(self) -> None:
        """Stop the worker threads."""
        self._pool.shutdown(wait=True)

    def __call__(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        env: dict[str, Any] = {t: feeds[t] for t in self.g.inputs}
        for kind, tasks in self.stages:
            if kind == "serial":
                t = tasks[0]
                outs = t.session.run(t.outputs, {i: env[i] for i in t.inputs})
                env.update(zip(t.outputs, outs))
                continue
            futs: dict[str, Future] = {o: Future() for t in tasks for o in t.outputs}
            local = dict(env)

            def run_cluster(ci: int, futs=futs, local=local, tasks=tasks) -> None:
                try:
                    for t in tasks:
                        if t.cluster != ci:
                            continue
                        feed = {i: (local[i] if i in local else futs[i].result()) for i in t.inputs}
                        for o, val in zip(t.outputs, t.session.run(t.outputs, feed)):
                            try:  # a cloned node computes the same tensor in two clusters: first one wins
                                futs[o].set_result(val)
                            except InvalidStateError:
                                pass
                except BaseException as exc:  # noqa: BLE001 - hand the failure to every waiter
                    for f in futs.values():
                        try:
                            f.set_exception(exc)
                        except InvalidStateError:
                            pass
                    raise

            clusters = sorted({t.cluster for t in tasks})
            jobs = [self._pool.submit(run_cluster, ci) for ci in clusters if ci != 0]
            run_cluster(0)
            for j in jobs:
                j.result()
            env.update({o: f.result() for o, f in futs.items()})
        return [env[o] if o in env else self.g.initializers[o] for o in self.g.outputs]
