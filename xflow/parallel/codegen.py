"""Code generation: a readable, standalone Python module that runs a :class:`Plan`.

The generated module contains

* a header docstring saying what produced it (xflow version, source model and hash, plan summary);
* ``load_weights(path)``: reads the ONNX initializers into torch tensors;
* ``class Kernels(torch.nn.Module)``: the weights as buffers and **one method per cluster**
  (``s<stage>_c<cluster>``) or per serial stage (``s<stage>``), each a straight list of torch calls,
  one per ONNX node, commented with the node name;
* ``class Model``: ``forward(*inputs)`` runs the stages in order.

Backends:

``threads``
    Cluster 0 of a parallel stage runs on the calling thread, the others on a
    ``ThreadPoolExecutor`` (torch ops release the GIL). A tensor one cluster produces and another
    reads is handed over through a ``concurrent.futures.Future``. Workers use 1 intra-op thread.
``torchscript``
    ``Kernels`` is compiled with ``torch.jit.script``; each parallel stage is a scripted method that
    starts its tasks with ``torch.jit.fork`` and collects them with ``torch.jit.wait``. A cluster is
    cut into *tasks* at every cross-cluster hand-over, and the driver forks tasks in predicted start
    order after waiting for their inputs (deadlock-free).
"""
from __future__ import annotations

import datetime as _dt
import textwrap
from dataclasses import dataclass
from typing import Any

from xflow.parallel.dataflow import DataflowGraph
from xflow.parallel.naming import Names, node_lines
from xflow.parallel.schedule import Cluster, Plan, simulate_stage

__all__ = ["generate", "load_generated", "BACKENDS"]

BACKENDS = ("threads", "torchscript")

_PRELUDE = '''
import os
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def load_weights(path: str) -> Dict[str, Tensor]:
    """Read the initializers of the ONNX model at ``path`` into torch tensors (by ONNX name)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    return {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer}


def _set_threads(n: int) -> None:
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _worker_init() -> None:
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)


def _fail(exc: BaseException, *futures: Future) -> None:
    for f in futures:
        if not f.done():
            f.set_exception(exc)
'''


@dataclass
class _StageIO:
    live_in: list[str]
    live_out: list[str]


def _stage_io(g: DataflowGraph, plan: Plan) -> list[_StageIO]:
    produced_by_stage: dict[str, int] = {}
    reads: list[set[str]] = []
    for si, st in enumerate(plan.stages):
        r: set[str] = set()
        for c in st.clusters:
            for v in c.nodes:
                r.update(i for i in g.nodes[v].inputs if i and i not in g.initializers)
                for o in g.nodes[v].outputs:
                    if o:
                        produced_by_stage.setdefault(o, si)
        reads.append(r)
    out = []
    for si, st in enumerate(plan.stages):
        prod = {o for o, s in produced_by_stage.items() if s == si}
        live_in = sorted(t for t in reads[si] if t not in prod)
        later = set(g.outputs)
        for sj in range(si + 1, len(plan.stages)):
            later |= reads[sj]
        live_out = sorted(t for t in prod if t in later)
        out.append(_StageIO(live_in, live_out))
    return out


def _line_with_comment(g: DataflowGraph, lines: list[str], v: int, clone: bool = False,
                       trace: bool = False) -> str:
    n = g.nodes[v]
    tag = f"  # {n.op} {n.name}" + (" (clone)" if clone else "")
    if trace:
        return (f"_t0 = time.perf_counter()\n{lines[v]}{tag}\n"
                f"TRACE.append((threading.get_ident(), {v}, _t0, time.perf_counter()))")
    return lines[v] + tag


def _tuple(xs: list[str]) -> str:
    if not xs:
        return "()"
    return "(" + ", ".join(xs) + ("," if len(xs) == 1 else "") + ")"


def _unpack(names: list[str], expr: str, tmp: str) -> list[str]:
    if not names:
        return [expr]
    return [f"{tmp} = {expr}"] + [f"{n} = {tmp}[{k}]" for k, n in enumerate(names)]


class _Gen:
    def __init__(self, g: DataflowGraph, plan: Plan, backend: str, trace: bool = False) -> None:
        if backend not in BACKENDS:
            from xflow.errors import UnknownName

            raise UnknownName(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if trace and backend != "threads":
            raise ValueError("trace=True is only supported by the threads backend")
        self.g, self.plan, self.backend, self.trace = g, plan, backend, trace
        self.names = Names(g)
        self.lines = node_lines(g, self.names)
        self.io = _stage_io(g, plan)
        self.methods: list[str] = []
        self.driver: list[str] = []
        self._threads: int | None = None  # intra-op threads the driver last set

    def set_threads(self, n: int) -> None:
        if n != self._threads:
            self.driver.append(f"_set_threads({n})")
            self._threads = n

    # ---------------------------------------------------------------- helpers
    def v(self, t: str) -> str:
        return self.names.var(t)

    def _owner(self, clusters: list[Cluster]) -> dict[str, int]:
        own: dict[str, int] = {}
        for ci, c in enumerate(clusters):
            for v in c.nodes:
                if v in c.clones:
                    continue
                for o in self.g.nodes[v].outputs:
                    if o:
                        own[o] = ci
        return own

    def _method(self, name: str, args: list[str], body: list[str], doc: str) -> None:
        sig = ", ".join(["self"] + args)
        src = [f"@torch.jit.export", f"def {name}({sig}):", f'    """{doc}"""']
        src += ["    " + ln for b in body for ln in b.split("\n")]
        self.methods.append("\n".join(src))

    # ---------------------------------------------------------------- stages
    def serial_stage(self, si: int) -> None:
        st, io = self.plan.stages[si], self.io[si]
        ids = st.clusters[0].nodes
        body = [_line_with_comment(self.g, self.lines, v, trace=self.trace) for v in ids]
        body.append(f"return {_tuple([self.v(t) for t in io.live_out])}")
        ins = [self.v(t) for t in io.live_in]
        self._method(f"s{si}", ins, body,
                     f"Stage {si}: serial, {len(ids)} nodes, {st.threads} intra-op thread(s), "
                     f"predicted {st.predicted_us:.0f} us.")
        self.driver.append(f"# stage {si}: serial ({st.decision or 'no branch parallelism'})")
        self.set_threads(st.threads)
        self.driver += _unpack([self.v(t) for t in io.live_out],
                               f"self.k.s{si}({', '.join(ins)})", "r")

    def parallel_stage_threads(self, si: int) -> None:
        st, io = self.plan.stages[si], self.io[si]
        g, cl = self.g, st.clusters
        owner = self._owner(cl)
        local = [set(o for v in c.nodes for o in g.nodes[v].outputs if o) for c in cl]
        cross: set[str] = set()  # tensors handed over between clusters
        need: list[list[str]] = []
        for ci, c in enumerate(cl):
            n_ = []
            for v in c.nodes:
                for i in g.nodes[v].inputs:
                    if i and i in owner and i not in local[ci] and i not in n_:
                        n_.append(i)
                        cross.add(i)
            need.append(n_)
        cross_sorted = sorted(cross)
        calls = []
        for ci, c in enumerate(cl):
            args_in = []
            for v in c.nodes:
                for i in g.nodes[v].inputs:
                    if i in io.live_in and self.v(i) not in args_in:
                        args_in.append(self.v(i))
            sets = [t for t in cross_sorted if owner[t] == ci]
            futs = ["f_" + self.v(t) for t in cross_sorted if owner[t] == ci or t in need[ci]]
            outs = [t for t in io.live_out if owner.get(t) == ci]
            body, fetched = [], set()
            for v in c.nodes:
                for i in g.nodes[v].inputs:
                    if i in need[ci] and i not in fetched:
                        body.append(f"{self.v(i)} = f_{self.v(i)}.result()  # from cluster {owner[i]}")
                        fetched.add(i)
                body.append(_line_with_comment(g, self.lines, v, v in c.clones, trace=self.trace))
                for o in g.nodes[v].outputs:
                    if o in sets and v not in c.clones:
                        body.append(f"f_{self.v(o)}.set_result({self.v(o)})")
            body.append(f"return {_tuple([self.v(t) for t in outs])}")
            own_futs = ["f_" + self.v(t) for t in sets]
            if own_futs:
                body = (["try:"] + ["    " + ln for b in body for ln in b.split("\n")] +
                        ["except BaseException as exc:", f"    _fail(exc, {', '.join(own_futs)})",
                         "    raise"])
            cost = c.cost(g, 1)
            self._method(f"s{si}_c{ci}", args_in + futs, body,
                         f"Stage {si}, cluster {ci} ({'calling thread' if ci == 0 else 'worker'}): "
                         f"{len(c.nodes)} nodes ({len(c.clones)} cloned), {cost:.0f} us of work.")
            calls.append((ci, args_in + futs, outs))
        self.driver.append(f"# stage {si}: parallel, {len(cl)} clusters "
                           f"(predicted {st.predicted_us:.0f} us; {st.decision})")
        self.set_threads(1)
        for t in cross_sorted:
            self.driver.append(f"f_{self.v(t)}: Future = Future()")
        for ci, args, outs in calls[1:]:
            self.driver.append(f"j{ci} = self._pool.submit(self.k.s{si}_c{ci}, {', '.join(args)})")
        ci, args, outs = calls[0]
        self.driver += _unpack([self.v(t) for t in outs], f"self.k.s{si}_c0({', '.join(args)})", "r")
        for ci, args, outs in calls[1:]:
            self.driver += _unpack([self.v(t) for t in outs], f"j{ci}.result()", "r")

    def parallel_stage_script(self, si: int) -> None:
        st, io = self.plan.stages[si], self.io[si]
        g, cl = self.g, st.clusters
        owner = self._owner(cl)
        local = [set(o for v in c.nodes for o in g.nodes[v].outputs if o) for c in cl]
        # cut clusters into tasks at cross-cluster hand-overs
        tasks: list[tuple[int, list[int]]] = []
        for ci, c in enumerate(cl):
            cur: list[int] = []
            for v in c.nodes:
                reads_cross = any(i in owner and i not in local[ci] for i in g.nodes[v].inputs)
                if reads_cross and cur:
                    tasks.append((ci, cur))
                    cur = []
                cur.append(v)
                feeds_other = any(
                    o and owner.get(o) == ci and v not in c.clones and any(
                        o in g.nodes[u].inputs for cj, c2 in enumerate(cl) if cj != ci
                        and o not in local[cj] for u in c2.nodes)
                    for o in g.nodes[v].outputs)
                if feeds_other:
                    tasks.append((ci, cur))
                    cur = []
            if cur:
                tasks.append((ci, cur))
        tl = simulate_stage(g, cl)
        start = {}
        for w, v, s, _e in tl.events:
            start.setdefault((w, v), s)
        tasks.sort(key=lambda t: (start.get((t[0], t[1][0]), 0.0), t[0], t[1][0]))
        produced_by_task: dict[str, int] = {}
        for ti, (ci, ids) in enumerate(tasks):
            for v in ids:
                if v in cl[ci].clones:
                    continue
                for o in g.nodes[v].outputs:
                    if o:
                        produced_by_task[o] = ti
        task_in: list[list[str]] = []
        task_out: list[list[str]] = []
        for ti, (ci, ids) in enumerate(tasks):
            made: set[str] = set()
            ins: list[str] = []
            for v in ids:
                for i in g.nodes[v].inputs:
                    if i and i not in g.initializers and i not in made and i not in ins:
                        ins.append(i)
                made.update(o for o in g.nodes[v].outputs if o)
            task_in.append(ins)
        for ti, (ci, ids) in enumerate(tasks):
            outs = []
            for t, pt in produced_by_task.items():
                if pt != ti:
                    continue
                if t in io.live_out or any(t in task_in[tj] for tj in range(len(tasks)) if tj != ti):
                    outs.append(t)
            task_out.append(sorted(outs))
        for ti, (ci, ids) in enumerate(tasks):
            body = [_line_with_comment(g, self.lines, v, v in cl[ci].clones, trace=self.trace) for v in ids]
            body.append(f"return {_tuple([self.v(t) for t in task_out[ti]])}")
            self._method(f"s{si}_c{ci}_t{ti}", [self.v(t) for t in task_in[ti]], body,
                         f"Stage {si}, cluster {ci}, task {ti}: {len(ids)} nodes.")
        # driver method (scripted): fork in predicted start order, wait for inputs first; before
        # blocking on a worker's result, run the calling thread's next tasks that are ready
        body: list[str] = []
        avail = set(io.live_in)
        pending: dict[int, bool] = {}
        queue0 = [ti for ti, (ci, _ids) in enumerate(tasks) if ci == 0]
        emitted: set[int] = set()

        def run_inline(ti: int) -> None:
            args = ", ".join(self.v(t) for t in task_in[ti])
            body.extend(_unpack([self.v(x) for x in task_out[ti]],
                                f"self.s{si}_c0_t{ti}({args})", f"r{ti}"))
            avail.update(task_out[ti])
            emitted.add(ti)

        def wait_for(ti: int) -> None:
            for t in task_in[ti]:
                if t not in avail:
                    tj = produced_by_task[t]
                    body.extend(_unpack([self.v(x) for x in task_out[tj]],
                                        f"torch.jit.wait(fut{tj})", f"r{tj}"))
                    avail.update(task_out[tj])
                    pending.pop(tj, None)

        for ti, (ci, ids) in enumerate(tasks):
            if ti in emitted:
                continue
            if any(t not in avail for t in task_in[ti]):
                while queue0 and queue0[0] != ti and all(t in avail for t in task_in[queue0[0]]):
                    run_inline(queue0.pop(0))
            wait_for(ti)
            if ci == 0:
                if queue0 and queue0[0] == ti:
                    queue0.pop(0)
                run_inline(ti)
            else:
                args = ", ".join(self.v(t) for t in task_in[ti])
                body.append(f"fut{ti} = torch.jit.fork(self.s{si}_c{ci}_t{ti}{', ' if args else ''}{args})")
                pending[ti] = True
                emitted.add(ti)
        for tj in list(pending):
            body += _unpack([self.v(x) for x in task_out[tj]], f"torch.jit.wait(fut{tj})", f"r{tj}")
        body.append(f"return {_tuple([self.v(t) for t in io.live_out])}")
        ins = [self.v(t) for t in io.live_in]
        self._method(f"s{si}", ins, body,
                     f"Stage {si}: parallel, {len(cl)} clusters in {len(tasks)} tasks (fork/wait), "
                     f"predicted {st.predicted_us:.0f} us.")
        self.driver.append(f"# stage {si}: parallel, {len(cl)} clusters via torch.jit.fork "
                           f"(predicted {st.predicted_us:.0f} us; {st.decision})")
        self.set_threads(1)
        self.driver += _unpack([self.v(t) for t in io.live_out],
                               f"self.k.s{si}({', '.join(ins)})", "r")

    # ---------------------------------------------------------------- module
    def module(self, meta: dict[str, Any]) -> str:
        for si, st in enumerate(self.plan.stages):
            if st.kind == "serial" or len(st.clusters) == 1:
                self.serial_stage(si)
            elif self.backend == "threads":
                self.parallel_stage_threads(si)
            else:
                self.parallel_stage_script(si)
        g, plan = self.g, self.plan
        n_par = sum(1 for s in plan.stages if s.kind == "parallel" and len(s.clusters) > 1)
        header = textwrap.dedent(f'''\
            """Generated by xflow.parallel {meta.get("xflow_version", "")} on {meta.get("date", "")}. Do not edit by hand.

            Source model : {meta.get("source", "<in-memory>")}  (content hash {g.content_hash})
            Backend      : {self.backend};  workers: {plan.workers};  mode: {plan.mode}{"  (serial fallback)" if plan.fallback else ""}
            Stages       : {len(plan.stages)} ({n_par} parallel);  nodes: {len(g.nodes)};  cloned: {plan.n_clones}
            Removed      : {g.pass_stats.get("const_nodes_folded", 0)} constant nodes folded, {g.pass_stats.get("dead_nodes_removed", 0)} dead nodes
            Predicted    : {plan.predicted_us:.0f} us vs serial {plan.serial_predicted_us:.0f} us (x{plan.predicted_speedup:.2f})

            Usage:  m = Model(); outputs = m({", ".join(self.v(i) for i in g.inputs)})
            """''')
        weights = self.names.weights()
        used_w = sorted({i for n in g.nodes for i in n.inputs if i in weights})
        wmap = "{\n" + "".join(f"    {k!r}: {weights[k]!r},\n" for k in used_w) + "}"
        kern = ["class Kernels(torch.nn.Module):",
                '    """Weights as buffers and one method per cluster / serial stage."""', "",
                "    def __init__(self, weights: Dict[str, Tensor]) -> None:",
                "        super().__init__()",
                "        for onnx_name, attr in WEIGHTS.items():",
                "            self.register_buffer(attr, weights[onnx_name])", "",
                "    def forward(self, x: Tensor) -> Tensor:  # unused; the stages are the entry points",
                "        return x", ""]
        for m in self.methods:
            kern.append(textwrap.indent(m, "    "))
            kern.append("")
        ins = [self.v(i) for i in g.inputs]
        outs = [self.names.expr(o) if o in g.initializers else self.v(o) for o in g.outputs]
        script = self.backend == "torchscript"
        model = [
            "class Model:",
            '    """Runs the schedule; call with the graph inputs, returns the graph outputs."""', "",
            "    def __init__(self, onnx_path: Optional[str] = None, weights: Optional[Dict[str, Tensor]] = None) -> None:",
            "        if weights is None:",
            "            weights = load_weights(onnx_path or DEFAULT_ONNX)",
            "        k = Kernels(weights).eval()",
        ] + ([
            "        with warnings.catch_warnings():  # torch>=2.9 marks TorchScript deprecated",
            "            warnings.simplefilter('ignore', FutureWarning)",
            "            k = torch.jit.script(k)",
        ] if script else []) + [
            "        self.k = k",
            f"        self._pool = ThreadPoolExecutor({max(plan.workers - 1, 1)}, initializer=_worker_init)", "",
            "    def close(self) -> None:",
            '        """Stop the worker threads."""',
            "        self._pool.shutdown(wait=True)", "",
            f"    def __call__(self, {', '.join(ins)}):",
            f"        return self.forward({', '.join(ins)})", "",
            f"    def forward(self, {', '.join(ins)}):",
            "        prev = torch.get_num_threads()",
            "        try:",
            "            with torch.no_grad():",
        ]
        model += ["                " + d for d in self.driver]
        model.append(f"                return {outs[0] if len(outs) == 1 else _tuple(outs)}")
        model += ["        finally:", "            _set_threads(prev)"]
        consts = [
            f"INPUTS = {list(g.inputs)!r}",
            f"OUTPUTS = {list(g.outputs)!r}",
            f"INPUT_SHAPES = {[list(g.shapes[i]) for i in g.inputs]!r}",
            f"BACKEND = {self.backend!r}",
            f"WORKERS = {plan.workers}",
            f"DEFAULT_ONNX = os.path.join(os.path.dirname(os.path.abspath(__file__)), {meta.get('weights_file', 'model.onnx')!r})",
            f"WEIGHTS = {wmap}",
        ]
        if self.trace:
            consts += ["import threading", "import time",
                       "TRACE: List[Tuple[int, int, float, float]] = []  # (thread id, node index, start, end)"]
        return "\n".join([header, _PRELUDE, "\n".join(consts), "", "", "\n".join(kern), "",
                          "\n".join(model), ""])


def generate(g: DataflowGraph, plan: Plan, *, backend: str = "threads",
             source: str | None = None, weights_file: str = "model.onnx", trace: bool = False) -> str:
    """Source code of a standalone module running ``plan`` on ``g`` with ``backend``.

    ``trace=True`` (threads backend) makes every node append ``(thread id, node index, start,
    end)`` to the module-level ``TRACE`` list, for measured Gantt charts.
    """
    try:
        from importlib.metadata import version

        ver = version("xflow")
    except Exception:  # noqa: BLE001
        ver = "dev"
    meta = {"xflow_version": ver, "source": source or "<in-memory>", "weights_file": weights_file,
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    return _Gen(g, plan, backend, trace).module(meta)


def load_generated(source: str, g: DataflowGraph | None = None, *, weights: dict | None = None):
    """Import generated ``source`` as a module and return ``(module, Model instance)``.

    The source is written to the cache (keyed by its hash) and imported from there, because
    ``torch.jit.script`` needs the source file. Weights come from ``weights`` or from
    ``g.initializers`` (no ONNX file needed).
    """
    import hashlib
    import importlib.util

    import torch

    from xflow.paths import cache_dir

    h = hashlib.sha256(source.encode()).hexdigest()[:16]
    path = cache_dir("parallel", "generated") / f"gen_{h}.py"
    from xflow.safeio import atomic_write_text, discard_corrupt

    if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest()[:16] != h:
        discard_corrupt(path, "content does not match its hash")  # the name is the content hash
    if not path.exists():
        atomic_write_text(path, source)
    spec = importlib.util.spec_from_file_location(f"xflow_gen_{h}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if weights is None:
        assert g is not None, "pass g or weights"
        weights = {k: torch.from_numpy(v.copy()) for k, v in g.initializers.items()}
    return mod, mod.Model(weights=weights)
