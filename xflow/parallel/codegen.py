"""Code generation: a readable, standalone Python module that runs a :class:`Plan`.

The generated module contains

* a header docstring saying what produced it (xflow version, source model and hash, plan summary);
* ``load_weights(path)``: reads the ONNX initializers into torch tensors;
* ``class Kernels(torch.nn.Module)``: the weights (and the weights the torch backend derives from
  them once: folded BatchNorms, prepacked oneDNN convolution weights) as buffers and **one method
  per cluster** (``s<stage>_c<cluster>``) or per serial stage (``s<stage>``), each a straight list of
  kernels of the shared ONNX→PyTorch backend (:mod:`xflow.runtime.backend_lower`), commented with
  the node name;
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
``cuda_streams``
    For a GPU (generate from a graph lowered with ``LowerOptions(device="cuda")``): one CUDA stream
    per cluster; the host issues the same tasks in predicted start order, each on its cluster's
    stream, and hand-overs are CUDA events (``wait_event`` on the consumer's stream), so the
    device overlaps independent branches; the current stream waits for every cluster at the end
    of a stage. The module refuses to build without a GPU (guarded); ``benchmarks/parallel_cuda_streams.py``
    measures it on one.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

from xflow.errors import UnknownName, UnsupportedLowering
from xflow.parallel.dataflow import DataflowGraph
from xflow.parallel.schedule import Cluster, Plan, cut_tasks
from xflow.runtime.backend_codegen import (PRELUDE, header_meta, kernel_line, kernels_class, load_module, method_source,
                                           program_weights, tuple_src, unpack)

__all__ = ["generate", "load_generated", "BACKENDS"]

BACKENDS = ("threads", "torchscript", "cuda_streams")

_tuple = tuple_src
_unpack = unpack


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


class _Gen:
    def __init__(self, g: DataflowGraph, plan: Plan, backend: str, trace: bool = False) -> None:
        if backend not in BACKENDS:
            raise UnknownName(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if trace and backend != "threads":
            raise ValueError("trace=True is only supported by the threads backend")
        if g.program is None:
            raise ValueError("code generation needs an ONNX dataflow graph (from_onnx); fx graphs are "
                             "for analysis only")
        self.g, self.plan, self.backend, self.trace = g, plan, backend, trace
        self.program = g.program
        self.names = g.program.names
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
        self.methods.append(method_source(name, args, body, doc))

    def line(self, v: int, clone: bool = False) -> str:
        """Kernel ``v``'s statements (traced when building a traced module)."""
        return kernel_line(self.program.kernels[v], clone=clone, trace_index=v if self.trace else None)

    # ---------------------------------------------------------------- stages
    def serial_stage(self, si: int) -> None:
        st, io = self.plan.stages[si], self.io[si]
        ids = st.clusters[0].nodes
        body = [self.line(v) for v in ids]
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
                body.append(self.line(v, v in c.clones))
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

    def _tasks(self, si: int) -> tuple[list[tuple[int, list[int]]], list[list[str]], list[list[str]], dict[str, int]]:
        """A parallel stage's tasks (:func:`cut_tasks`), each emitted as a ``Kernels`` method
        ``s<stage>_c<cluster>_t<task>``; returns ``(tasks, inputs, outputs, producer task of each tensor)``."""
        st, io = self.plan.stages[si], self.io[si]
        g, cl = self.g, st.clusters
        tasks = cut_tasks(g, cl)
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
            body = [self.line(v, v in cl[ci].clones) for v in ids]
            body.append(f"return {_tuple([self.v(t) for t in task_out[ti]])}")
            self._method(f"s{si}_c{ci}_t{ti}", [self.v(t) for t in task_in[ti]], body,
                         f"Stage {si}, cluster {ci}, task {ti}: {len(ids)} nodes.")
        return tasks, task_in, task_out, produced_by_task

    def parallel_stage_streams(self, si: int) -> None:
        """CUDA streams: one stream per cluster; the host issues the tasks in predicted start order,
        each on its cluster's stream after waiting (on the device) for the events of the tasks it
        reads from; the stage ends with the current stream waiting for every cluster stream."""
        st, io = self.plan.stages[si], self.io[si]
        tasks, task_in, task_out, produced_by_task = self._tasks(si)
        feeds_other = {produced_by_task[t] for ti, (ci, _ids) in enumerate(tasks) for t in task_in[ti]
                       if t in produced_by_task and tasks[produced_by_task[t]][0] != ci}
        used = sorted({ci for ci, _ids in tasks})
        self.driver.append(f"# stage {si}: parallel, {len(st.clusters)} clusters on CUDA streams "
                           f"(predicted {st.predicted_us:.0f} us; {st.decision})")
        self.driver.append(f"_e{si} = torch.cuda.Event()")
        self.driver.append(f"_e{si}.record()  # the stage's inputs are ready on the current stream")
        for ci in used:
            self.driver.append(f"self._streams[{ci}].wait_event(_e{si})")
        for ti, (ci, _ids) in enumerate(tasks):
            waits = sorted({produced_by_task[t] for t in task_in[ti]
                            if t in produced_by_task and tasks[produced_by_task[t]][0] != ci})
            self.driver.append(f"with torch.cuda.stream(self._streams[{ci}]):")
            for tj in waits:
                self.driver.append(f"    self._streams[{ci}].wait_event(ev{si}_{tj})")
            args = ", ".join(self.v(t) for t in task_in[ti])
            self.driver += ["    " + ln for ln in _unpack([self.v(x) for x in task_out[ti]],
                                                        f"self.k.s{si}_c{ci}_t{ti}({args})", f"r{ti}")]
            if ti in feeds_other:
                self.driver.append(f"    ev{si}_{ti} = torch.cuda.Event()")
                self.driver.append(f"    ev{si}_{ti}.record()")
        for ci in used:
            self.driver.append(f"_j = torch.cuda.Event()")
            self.driver.append(f"_j.record(self._streams[{ci}])")
            self.driver.append("torch.cuda.current_stream().wait_event(_j)")

    def parallel_stage_script(self, si: int) -> None:
        st, io = self.plan.stages[si], self.io[si]
        g, cl = self.g, st.clusters
        tasks, task_in, task_out, produced_by_task = self._tasks(si)
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
            elif self.backend == "cuda_streams":
                self.parallel_stage_streams(si)
            else:
                self.parallel_stage_script(si)
        g, plan = self.g, self.plan
        n_par = sum(1 for s in plan.stages if s.kind == "parallel" and len(s.clusters) > 1)
        opts = self.program.options
        header = textwrap.dedent(f'''\
            """Generated by xflow.parallel {meta.get("xflow_version", "")} on {meta.get("date", "")}. Do not edit by hand.

            Source model : {meta.get("source", "<in-memory>")}  (content hash {g.content_hash})
            Backend      : {self.backend};  workers: {plan.workers};  mode: {plan.mode}{"  (serial fallback)" if plan.fallback else ""}
            Stages       : {len(plan.stages)} ({n_par} parallel);  kernels: {len(g.nodes)} ({self.program.fused_nodes} ONNX nodes fused);  cloned: {plan.n_clones}
            Lowering     : layout {opts.layout}, oneDNN {opts.onednn} (xflow.runtime.backend_lower)
            Removed      : {g.pass_stats.get("const_nodes_folded", 0)} constant nodes folded, {g.pass_stats.get("dead_nodes_removed", 0)} dead nodes
            Predicted    : {plan.predicted_us:.0f} us vs serial {plan.serial_predicted_us:.0f} us (x{plan.predicted_speedup:.2f})

            Usage:  m = Model(); outputs = m({", ".join(self.v(i) for i in g.inputs)})
            """''')
        kern = kernels_class(self.program, self.methods,
                             doc="Weights as buffers and one method per cluster / serial stage.")
        ins = [self.v(i) for i in g.inputs]
        outs = [self.names.expr(o).replace("self.", "self.k.", 1) if o in g.initializers else self.v(o)
                for o in g.outputs]
        script = self.backend == "torchscript"
        graph = self.program.options.onednn == "graph"  # frozen TorchScript kernels on every backend
        if graph and self.backend == "threads" and n_par:
            raise UnsupportedLowering(
                "the onednn='graph' lowering needs frozen TorchScript kernels, and the threads backend's "
                "parallel clusters hand tensors over through Python futures; use backend='torchscript' "
                "(or mode='serial', or another onednn setting)")
        streams = self.backend == "cuda_streams"
        model = [
            "class Model:",
            '    """Runs the schedule; call with the graph inputs, returns the graph outputs."""', "",
            "    def __init__(self, onnx_path: Optional[str] = None, weights: Optional[Dict[str, Tensor]] = None) -> None:",
            "        if weights is None:",
            "            weights = load_weights(onnx_path or DEFAULT_ONNX)",
        ] + ([
            "        if not torch.cuda.is_available():",
            "            raise RuntimeError('this module runs its clusters on CUDA streams and needs a CUDA GPU; '",
            "                               'torch.cuda.is_available() is False here (generate with the threads backend)')",
            "        self.device = torch.device('cuda')",
            "        weights = {n: t.to(self.device) for n, t in weights.items()}",
            f"        self._streams = [torch.cuda.Stream() for _ in range({plan.workers})]",
        ] if streams else []) + [
            "        with torch.no_grad():",
            "            k = Kernels(weights).eval()",
        ] + ([
            f"        k = _compile_kernels(k, {_method_names(self.methods)!r}, {graph})",
        ] if script or graph else []) + [
            "        self.k = k",
            f"        self._pool = ThreadPoolExecutor({max(plan.workers - 1, 1)}, initializer=_worker_init)", "",
            "    def close(self) -> None:",
            '        """Stop the worker threads."""',
            "        self._pool.shutdown(wait=True)", "",
            f"    def __call__(self, {', '.join(ins)}):",
            f"        return self.forward({', '.join(ins)})", "",
            f"    def forward(self, {', '.join(ins)}):",
            "        prev = torch.get_num_threads()",
        ] + ([
            "        fusion = _onednn_fusion(True)  # for this module's calls only (see _onednn_fusion)",
        ] if graph else []) + [
            "        try:",
            "            with torch.no_grad():",
        ]
        to_dev = [f"{x} = {x}.to(self.device, non_blocking=True)" for x in ins] if streams else []
        model += ["                " + d for d in to_dev + list(self.program.prologue) + self.driver]
        model.append(f"                return {outs[0] if len(outs) == 1 else _tuple(outs)}")
        model += ["        finally:", "            _set_threads(prev)"]
        if graph:
            model.append("            _onednn_fusion(fusion)")
        consts = [
            f"INPUTS = {list(g.inputs)!r}",
            f"OUTPUTS = {list(self.program.output_names)!r}",
            f"INPUT_SHAPES = {[list(g.shapes[i]) for i in g.inputs]!r}",
            f"BACKEND = {self.backend!r}",
            f"WORKERS = {plan.workers}",
            f"DEFAULT_ONNX = os.path.join(os.path.dirname(os.path.abspath(__file__)), {meta.get('weights_file', 'model.onnx')!r})",
        ]
        if self.trace:
            consts += ["import threading", "import time",
                       "TRACE: List[Tuple[int, int, float, float]] = []  # (thread id, node index, start, end)"]
        return "\n".join([header, PRELUDE, "\n".join(consts), "", "", kern, "",
                          "\n".join(model), ""])


def _method_names(methods: list[str]) -> list[str]:
    """The names of the ``def`` s in generated method sources (kept callable by ``torch.jit.freeze``)."""
    import re

    return [m.group(1) for src in methods for m in [re.search(r"def (\w+)\(", src)] if m]


def generate(g: DataflowGraph, plan: Plan, *, backend: str = "threads",
             source: str | None = None, weights_file: str = "model.onnx", trace: bool = False) -> str:
    """Source code of a standalone module running ``plan`` on ``g`` with ``backend``.

    The per-kernel statements come from the shared torch backend (``g.program``); this module adds
    the schedule: stages, clusters on threads or ``torch.jit.fork`` tasks, hand-overs.
    ``trace=True`` (threads backend) makes every kernel append ``(thread id, node index, start,
    end)`` to the module-level ``TRACE`` list, for measured Gantt charts.
    """
    meta = {**header_meta(source), "weights_file": weights_file}
    return _Gen(g, plan, backend, trace).module(meta)


def load_generated(source: str, g: DataflowGraph | None = None, *, weights: dict | None = None):
    """Import generated ``source`` as a module and return ``(module, Model instance)``.

    Weights come from ``weights`` (ONNX name → tensor) or from ``g``'s program (no ONNX file needed).
    """
    mod = load_module(source, cache_area="parallel")
    if weights is None:
        assert g is not None and g.program is not None, "pass an ONNX dataflow graph or weights"
        weights = program_weights(g.program)
    return mod, mod.Model(weights=weights)
