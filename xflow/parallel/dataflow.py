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
from pathlib import Path
from typing import Any

import numpy as np

from xflow.errors import (DynamicShapeError, EmptyModelFile, InvalidModel, MalformedModel,
                          ModelFileNotFound)

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
        pass_stats: what constant propagation / DCE removed (``PassStats.as_dict()``).
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

    Uses the graph core (``xflow.graphs.load_model`` with ``fold=False``: constant folding is this
    package's own counted pass) and falls back to plain ``onnx`` when the graph core is absent.
    ``input_shapes`` fixes symbolic input dimensions (e.g. ``{"input": [1, 3, 224, 224]}``).
    Raises :class:`ModelFileNotFound`, :class:`EmptyModelFile`, :class:`MalformedModel`,
    :class:`InvalidModel` (or another typed error) with what went wrong.
    """
    try:
        from xflow.graphs.model import load_model
    except ImportError:  # graph core not in this checkout
        load_model = None
    if load_model is not None:
        return load_model(src, fold=False, input_shapes=input_shapes).model
    return _load_onnx_plain(src)


def _load_onnx_plain(src: Any):
    import onnx

    if isinstance(src, onnx.ModelProto):
        model = src
    else:
        if isinstance(src, (str, Path)):
            p = Path(src)
            if not p.exists():
                raise ModelFileNotFound(f"ONNX model file not found: {p}")
            data = p.read_bytes()
        elif isinstance(src, (bytes, bytearray)):
            data = bytes(src)
        else:
            raise MalformedModel(f"cannot load an ONNX model from a {type(src).__name__}; "
                                 "pass a path, bytes or onnx.ModelProto")
        if not data:
            raise EmptyModelFile("the ONNX model is empty (0 bytes)")
        try:
            model = onnx.load_from_string(data)
        except Exception as exc:  # noqa: BLE001
            raise MalformedModel(f"not a parseable ONNX model ({exc}); re-export it") from exc
        if not model.graph.node and not model.graph.output:
            raise MalformedModel("the bytes parse as an empty ONNX model (no nodes, no outputs); "
                                 "is this really an .onnx file?")
    try:
        onnx.checker.check_model(model)
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as exc:  # noqa: BLE001
        raise InvalidModel(f"ONNX checker/shape inference rejected the model: {exc}") from exc
    return model


def _flops(op: str, attrs: dict, in_shapes: list, out_shapes: list) -> float:
    out = out_shapes[0] if out_shapes and out_shapes[0] is not None else None
    n_out = float(np.prod(out)) if out is not None else 0.0
    if op == "Conv" and len(in_shapes) > 1 and in_shapes[1] is not None:
        w = in_shapes[1]
        return 2.0 * n_out * float(np.prod(w[1:]))
    if op in ("Gemm", "MatMul") and in_shapes and in_shapes[0] is not None:
        k = in_shapes[0][-1] if not attrs.get("transA") else in_shapes[0][0]
        return 2.0 * n_out * float(k)
    if op in ("MaxPool", "AveragePool"):
        return n_out * float(np.prod(attrs.get("kernel_shape", [1])))
    if in_shapes and in_shapes[0] is not None:
        return float(np.prod(in_shapes[0]))
    return n_out


def from_onnx(src: Any, *, optimize: bool = True,
              input_shapes: dict[str, Any] | None = None, lower: Any = None) -> DataflowGraph:
    """Build the dataflow graph of an ONNX model: one node per *kernel* of the torch backend.

    Loads and checks the model (:func:`load_onnx`), then — with ``optimize`` — runs constant
    propagation and dead-code elimination (counts in ``graph.pass_stats``), and lowers it with the
    shared ONNX→PyTorch backend (:func:`xflow.runtime.backend_lower.lower`, options ``lower``):
    a node of the dataflow graph is one emitted kernel (a single ONNX node, or a fused
    Conv+BN+activation group), so clustering, profiling and code generation all see the code that
    runs. All graph inputs must have static shapes (batch size included).
    """
    import hashlib

    import onnx

    from xflow.parallel.passes import PassStats, eliminate_dead_code, propagate_constants
    from xflow.runtime.backend_graph import view_of
    from xflow.runtime.backend_lower import LowerOptions
    from xflow.runtime.backend_lower import lower as lower_program

    model = load_onnx(src, input_shapes=input_shapes)
    stats = PassStats()
    if optimize:
        model, stats.const_nodes_folded = propagate_constants(model)
        model, stats.dead_nodes_removed, stats.dead_initializers_removed = eliminate_dead_code(model)
        model = onnx.shape_inference.infer_shapes(model)
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
    by_name = {n.name: n for n in view.nodes}
    nodes: list[DFNode] = []
    for i, k in enumerate(program.kernels):
        a = k.anchor
        ob = sum(float(np.prod(shapes[o])) * 4 for o in k.outputs if o in shapes)
        flops = sum(_flops(by_name[m].op_type, dict(by_name[m].attrs), [shapes.get(x) for x in by_name[m].inputs],
                           [shapes.get(x) for x in by_name[m].outputs]) for m in k.nodes)
        nodes.append(DFNode(id=i, name=k.name, op=k.op, inputs=list(k.inputs), outputs=list(k.outputs),
                            attrs=dict(a.attrs), domain=a.domain, flops=flops, out_bytes=ob))
    h = hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()[:16]
    h = hashlib.sha256((h + repr(sorted(program.options.as_dict().items()))).encode()).hexdigest()[:16]
    dg = DataflowGraph(nodes=nodes, inputs=list(program.inputs), outputs=list(program.outputs),
                       initializers=dict(view.initializers), shapes=shapes, dtypes=dtypes, model=model,
                       source="onnx", pass_stats=stats.as_dict(), content_hash=h)
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
