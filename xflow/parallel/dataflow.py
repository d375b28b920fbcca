"""The dataflow graph the parallelizer works on, built from an ONNX model or a ``torch.fx`` trace.

A :class:`DataflowGraph` is a DAG of operator nodes (``DFNode``) connected by the tensors they
exchange. Weights (initializers) are not nodes. Every node carries a cost per intra-op thread count
(microseconds), filled in by :mod:`xflow.parallel.cost`. For ONNX models a node is one kernel of the
shared ONNX→PyTorch backend (:mod:`xflow.runtime.backend_lower`; a fused Conv+BN+activation group
is one node) and the graph keeps that lowered program for code generation; ``torch.fx`` graphs
support analysis (clustering, predicted makespan) but not code generation.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xflow.errors import DynamicShapeError
from xflow.graphs.folding import FoldStats
from xflow.graphs.model import load_model
from xflow.graphs.opcost import op_flops, tensor_bytes
from xflow.runtime.backend_graph import view_of
from xflow.runtime.backend_lower import LowerOptions, lower as lower_program

__all__ = ["DFNode", "DataflowGraph", "load_onnx", "from_onnx", "from_fx"]

log = logging.getLogger(__name__)


@dataclass
class DFNode:
    """One operator of the dataflow graph.

    Attributes:
        id: position in the (topologically sorted) node list.
        name: unique node name.
        op: operator type (ONNX op type, or the fx target name).
        inputs / outputs: tensor names read / written (``""`` = omitted optional input).
        attrs: decoded attributes.
        domain: ONNX domain (``""`` for the default one).
        cost: microseconds per intra-op thread count, e.g. ``{1: 120.0, 2: 70.0}``.
        clone_of: name of the original node when this node is a clone made by the clusterer.
    """

    id: int
    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    domain: str = ""
    cost: dict[int, float] = field(default_factory=dict)
    clone_of: str | None = None
    flops: float = 0.0
    out_bytes: float = 0.0

    def cost_at(self, threads: int) -> float:
        """Cost in µs at ``threads`` intra-op threads (nearest measured count, else 1-thread cost)."""
        if threads in self.cost:
            return self.cost[threads]
        if not self.cost:
            return 1.0
        best = min(self.cost, key=lambda t: abs(t - threads))
        return self.cost[best]


@dataclass
class DataflowGraph:
    """A DAG of operators (topologically ordered) plus what code generation needs.

    Attributes:
        nodes: operator nodes in topological order (``nodes[i].id == i``).
        inputs / outputs: graph input / output tensor names.
        initializers: constant tensors (weights) by name.
        shapes: static tensor shapes by name (from ONNX shape inference or fx metadata).
        model: the cleaned ONNX model (``None`` for fx graphs).
        source: ``"onnx"`` or ``"fx"``.
        pass_stats: what the folding + dead-code pass removed (``FoldStats.as_dict()``).
        program: for ONNX graphs, the torch backend's lowered program whose kernels the nodes are
            (``None`` for fx graphs).
    """

    nodes: list[DFNode]
    inputs: list[str]
    outputs: list[str]
    initializers: dict[str, np.ndarray] = field(default_factory=dict)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    dtypes: dict[str, Any] = field(default_factory=dict)
    model: Any = None
    source: str = "onnx"
    pass_stats: dict[str, int] = field(default_factory=dict)
    content_hash: str = ""
    program: Any = None

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        """Recompute ids, producer map and predecessor/successor lists (after editing ``nodes``)."""
        for i, n in enumerate(self.nodes):
            n.id = i
        self.producer: dict[str, int] = {}
        for n in self.nodes:
            for o in n.outputs:
                if o:
                    self.producer[o] = n.id
        self.preds: list[list[int]] = []
        self.succs: list[list[int]] = [[] for _ in self.nodes]
        for n in self.nodes:
            ps = sorted({self.producer[i] for i in n.inputs if i in self.producer})
            self.preds.append(ps)
            for p in ps:
                self.succs[p].append(n.id)

    def __len__(self) -> int:
        return len(self.nodes)

    def op_counts(self) -> dict[str, int]:
        """Number of nodes per operator type."""
        out: dict[str, int] = {}
        for n in self.nodes:
            out[n.op] = out.get(n.op, 0) + 1
        return out

    def total_cost(self, threads: int = 1) -> float:
        """Sum of node costs (µs) at ``threads`` intra-op threads: the serial execution time."""
        return sum(n.cost_at(threads) for n in self.nodes)


def load_onnx(src: Any, *, input_shapes: dict[str, Any] | None = None):
    """Load an ONNX model from a path, bytes or ``ModelProto``; check it; infer shapes.

    The graph core's loader (:func:`xflow.graphs.load_model`, without folding) as a ``ModelProto``.
    ``input_shapes`` fixes symbolic input dimensions (e.g. ``{"input": [1, 3, 224, 224]}``).
    Raises :class:`ModelFileNotFound`, :class:`EmptyModelFile`, :class:`MalformedModel`,
    :class:`InvalidModel` (or another typed error) with what went wrong.
    """
    return load_model(src, fold=False, input_shapes=input_shapes).model


def _plain(value: Any) -> Any:
    """Attribute values as before the one reader: lists rather than tuples."""
    return list(value) if isinstance(value, tuple) else value


def from_onnx(src: Any, *, optimize: bool = True,
              input_shapes: dict[str, Any] | None = None, lower: Any = None) -> DataflowGraph:
    """Build the dataflow graph of an ONNX model: one node per *kernel* of the torch backend.

    Loads and checks the model with the graph core (:func:`xflow.graphs.load_model`; with
    ``optimize`` its one folding + dead-code pass, counts in ``graph.pass_stats``), then lowers it
    with the shared ONNX→PyTorch backend (:func:`xflow.runtime.backend_lower.lower`, options
    ``lower``): a node of the dataflow graph is one emitted kernel (a single ONNX node, or a fused
    Conv+BN+activation group), so clustering, profiling and code generation all see the code that
    runs. FLOPs come from the cost layer (:func:`xflow.graphs.opcost.op_flops`), summed over a
    kernel's ONNX nodes. All graph inputs must have static shapes (batch size included):
    code generation emits literal shapes (:class:`DynamicShapeError` otherwise).
    """
    import hashlib

    graph = load_model(src, fold=optimize, input_shapes=input_shapes)
    stats = graph.fold_stats.as_dict() if graph.fold_stats is not None else FoldStats().as_dict()
    model = graph.model
    view = view_of(model)
    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, Any] = {}
    names = {t for n in view.nodes for t in (*n.inputs, *n.outputs) if t} | set(view.inputs)
    for t in names:
        shp, dt = view.shape(t), view.dtype(t)
        if shp is not None:
            shapes[t] = shp
        if dt is not None:
            dtypes[t] = dt
    for name in view.inputs:
        if name not in shapes:
            raise DynamicShapeError(
                f"graph input {name!r} has a dynamic or unknown shape; export with a fixed batch "
                "size and image size (no dynamic_axes)")
    program = lower_program(view, lower or LowerOptions())
    ir_by_name = {n.name: n for n in graph.nodes}
    nodes: list[DFNode] = []
    for i, k in enumerate(program.kernels):
        a = k.anchor
        ob = float(sum(tensor_bytes(graph, o) for o in k.outputs if o))
        flops = float(sum(op_flops(graph, ir_by_name[m]) for m in k.nodes if m in ir_by_name))
        nodes.append(DFNode(id=i, name=k.name, op=k.op, inputs=list(k.inputs), outputs=list(k.outputs),
                            attrs={key: _plain(v) for key, v in dict(a.attrs).items()}, domain=a.domain,
                            flops=flops, out_bytes=ob))
    h = hashlib.sha256((graph.content_hash + repr(sorted(program.options.as_dict().items()))).encode()).hexdigest()[:16]
    dg = DataflowGraph(nodes=nodes, inputs=list(program.inputs), outputs=list(program.outputs),
                       initializers=dict(view.initializers), shapes=shapes, dtypes=dtypes, model=model,
                       source="onnx", pass_stats=stats, content_hash=h)
    dg.program = program
    return dg


def from_fx(module: Any, example_inputs: tuple) -> DataflowGraph:
    """Build a dataflow graph from a ``torch.fx`` trace of ``module`` (analysis only).

    Every ``call_module`` / ``call_function`` / ``call_method`` node becomes a :class:`DFNode`
    (``op`` = the submodule class or function name); shapes come from ``ShapeProp``. Costs can be
    filled with the analytic model; code generation needs the ONNX path.
    """
    import torch
    from torch.fx import symbolic_trace
    from torch.fx.passes.shape_prop import ShapeProp

    gm = symbolic_trace(module)
    ShapeProp(gm).propagate(*example_inputs)
    nodes: list[DFNode] = []
    shapes: dict[str, tuple[int, ...]] = {}
    inputs: list[str] = []
    outputs: list[str] = []
    for fxn in gm.graph.nodes:
        meta = fxn.meta.get("tensor_meta")
        if meta is not None and hasattr(meta, "shape"):
            shapes[fxn.name] = tuple(int(d) for d in meta.shape)
        if fxn.op == "placeholder":
            inputs.append(fxn.name)
            continue
        if fxn.op == "output":
            outs: list[str] = []
            torch.fx.node.map_arg(fxn.args[0], lambda a: outs.append(a.name))
            outputs = outs
            continue
        if fxn.op == "get_attr":
            continue
        if fxn.op == "call_module":
            op = type(gm.get_submodule(fxn.target)).__name__
        elif fxn.op == "call_function":
            op = getattr(fxn.target, "__name__", str(fxn.target))
        else:
            op = str(fxn.target)
        ins = [a.name for a in fxn.all_input_nodes if a.op != "get_attr"]
        in_shapes = [shapes.get(a) for a in ins]
        flops = 0.0
        if fxn.op == "call_module":
            sub = gm.get_submodule(fxn.target)
            out = shapes.get(fxn.name)
            if isinstance(sub, torch.nn.Conv2d) and out is not None:
                flops = 2.0 * float(np.prod(out)) * float(np.prod(sub.weight.shape[1:]))
            elif isinstance(sub, torch.nn.Linear) and out is not None:
                flops = 2.0 * float(np.prod(out)) * sub.in_features
        if not flops and in_shapes and in_shapes[0] is not None:
            flops = float(np.prod(in_shapes[0]))
        out_b = float(np.prod(shapes[fxn.name])) * 4 if fxn.name in shapes else 0.0
        nodes.append(DFNode(id=len(nodes), name=fxn.name, op=op, inputs=ins, outputs=[fxn.name],
                            attrs={"target": str(fxn.target)}, flops=flops, out_bytes=out_b))
    return DataflowGraph(nodes=nodes, inputs=inputs, outputs=outputs, shapes=shapes, source="fx",
                         content_hash=f"fx-{type(module).__name__}-{len(nodes)}")
