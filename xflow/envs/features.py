"""Fixed-width graph features of an ONNX model, for observations and the GNN.

Why here and not :func:`xflow.graphs.to_pyg`: a Gymnasium observation space needs feature widths
that never change between graphs, and the environment featurizes hundreds of candidate graphs per
step, so this reads the IR (:class:`xflow.graphs.Graph`: shapes already on its values, tensors
shared with the source graph — nothing is re-inferred or copied) and is cached by graph hash.

A graph becomes a :class:`gymnasium.spaces.GraphInstance` (``nodes``, ``edges``, ``edge_links``),
which maps one-to-one onto ``torch_geometric.data.Data(x=nodes, edge_attr=edges,
edge_index=edge_links.T)`` (see :func:`xflow.nn.batching.to_data`).

Nodes are the graph inputs (op ``Input``), every operator, and the graph outputs (op ``Output``).
Node features (``NODE_DIM`` columns): a one-hot over :data:`OP_VOCAB` (unknown ops → ``Other``),
then numeric attributes, each scaled to about ``[0, 10]``:

=====================  ==========================================================
column                 value
=====================  ==========================================================
``log_kernel``         ``log2(1 + prod(kernel_shape))``
``log_stride``         ``log2(1 + max(strides))``
``log_group``          ``log2(group)`` (Conv)
``n_const_inputs``     number of inputs that are initializers
``log_param_numel``    ``log10(1 + parameter elements)``
``n_inputs``           number of (non-empty) inputs
``n_outputs``          number of outputs
``log_out_numel``      ``log10(1 + elements of the first output)``
``log_cost_us``        ``log10(1 + cost in µs)`` of the operator under the env's cost model
                       (X-RLflow's per-op runtime feature; 0 without node costs)
=====================  ==========================================================

Edges run producer → consumer, one per (tensor, consumer) pair. Edge features (``EDGE_DIM``):
``rank / 6``, ``log2(1 + d)`` for the last four dims (right-aligned, 0 when absent or symbolic),
``log10(1 + numel)`` and a floating-point-dtype flag.
"""
from __future__ import annotations

import math

import numpy as np
import onnx
from gymnasium import spaces
from gymnasium.spaces import GraphInstance
from onnx import TensorProto

from xflow.graphs.ir import Graph, attrs, ins, outs

__all__ = [
    "OP_VOCAB",
    "NODE_DIM",
    "EDGE_DIM",
    "FEATURE_HIGH",
    "graph_space",
    "featurize",
    "GraphFeatures",
    "IncrementalFeaturizer",
    "diff_instance",
    "diff_parts",
    "cost_feature",
]

#: Operator vocabulary of the one-hot; the last entry catches everything else.
OP_VOCAB: tuple[str, ...] = (
    "Input", "Output", "Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div",
    "Relu", "Sigmoid", "Tanh", "LeakyRelu", "Clip", "HardSwish", "HardSigmoid", "Gelu", "Erf",
    "Softmax", "LayerNormalization", "BatchNormalization", "MaxPool", "AveragePool",
    "GlobalAveragePool", "Concat", "Split", "Slice", "Reshape", "Transpose", "Flatten", "Squeeze",
    "Unsqueeze", "Gather", "Pow", "Sqrt", "ReduceMean", "Identity", "Pad", "Resize", "Cast",
    "Shape", "Expand", "Where", "Other",
)
_OP_INDEX = {op: i for i, op in enumerate(OP_VOCAB)}
_N_NUMERIC = 9
_COST_COL = len(OP_VOCAB) + 8
NODE_DIM: int = len(OP_VOCAB) + _N_NUMERIC
EDGE_DIM: int = 1 + 4 + 1 + 1
#: Upper bound of every feature (features are clipped to ``[0, FEATURE_HIGH]``).
FEATURE_HIGH: float = 64.0

_FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16}


def graph_space() -> spaces.Graph:
    """The Gymnasium space of one featurized graph (bounded boxes, float32, int64 edge links)."""
    return spaces.Graph(
        node_space=spaces.Box(0.0, FEATURE_HIGH, shape=(NODE_DIM,), dtype=np.float32),
        edge_space=spaces.Box(0.0, FEATURE_HIGH, shape=(EDGE_DIM,), dtype=np.float32),
    )


def _shape(graph: Graph, tensor: str) -> tuple[int | None, ...] | None:
    """Shape with symbolic dims as ``None`` (``None`` when the rank is unknown)."""
    d = graph.dims(tensor)
    if d is None:
        c = graph.const(tensor)
        return None if c is None else tuple(c.shape)
    return tuple(x if isinstance(x, int) else None for x in d)


def _log2p(x: float) -> float:
    return math.log2(1.0 + max(0.0, x))


def _log10p(x: float) -> float:
    return math.log10(1.0 + max(0.0, x))


def _numel(shape: tuple[int | None, ...] | None) -> float:
    if shape is None or any(d is None for d in shape):
        return 0.0
    return float(math.prod(shape))


def _edge_features(shape: tuple[int | None, ...] | None, elem_type: int) -> list[float]:
    feats = [0.0] * EDGE_DIM
    if shape is not None:
        feats[0] = len(shape) / 6.0
        tail = list(shape[-4:])
        for j, d in enumerate(reversed(tail)):
            feats[4 - j] = _log2p(d) if d is not None else 0.0
        feats[5] = _log10p(_numel(shape))
    feats[6] = 1.0 if elem_type in _FLOAT_TYPES else 0.0
    return feats


def _node_features(graph: Graph, node, shapes: dict) -> list[float]:
    onehot = [0.0] * len(OP_VOCAB)
    onehot[_OP_INDEX.get(node.op_type, _OP_INDEX["Other"])] = 1.0
    a = attrs(node)
    names = ins(node)
    ks = a.get("kernel_shape")
    kernel = float(math.prod(ks)) if ks else 0.0
    if not kernel and node.op_type in ("Conv", "ConvTranspose") and len(names) > 1 and graph.is_initializer(names[1]):
        wshape = shapes[names[1]][0]
        if wshape is not None and len(wshape) > 2:
            kernel = float(math.prod(wshape[2:]))
    st = a.get("strides")
    stride = float(max(st)) if st else 0.0
    grp = a.get("group")
    group = float(grp) if isinstance(grp, int) and grp > 0 else 1.0
    const_in = [i for i in names if i and graph.is_initializer(i)]
    param_numel = sum(float(math.prod(shapes[i][0])) if shapes[i][0] else 1.0 for i in const_in)
    first = outs(node)[0] if node.outputs else ""
    out_shape = shapes[first][0] if first else None
    numeric = [
        _log2p(kernel), _log2p(stride), math.log2(group), float(len(const_in)),
        _log10p(param_numel), float(sum(1 for i in names if i)),
        float(len(node.outputs)), _log10p(_numel(out_shape)), 0.0,
    ]
    return onehot + numeric


class _Shapes(dict):
    """``{tensor: (shape, elem_type)}`` read from the graph on first use."""

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.graph = graph

    def __missing__(self, tensor: str):
        v = (_shape(self.graph, tensor), self.graph.elem_type(tensor) or 0)
        self[tensor] = v
        return v


def cost_feature(ms: float) -> float:
    """The ``log_cost_us`` column: ``log10(1 + 1000 ms)``."""
    return _log10p(1e3 * ms)


def featurize(model: Graph | onnx.ModelProto, node_costs: dict[str, float] | None = None) -> GraphInstance:
    """Featurize ``model`` into a :class:`GraphInstance` that lies in :func:`graph_space`.

    Deterministic: the same model content gives identical arrays (node order = graph inputs,
    operators in graph order, graph outputs). ``node_costs`` (``{node name: ms}``) fills the
    ``log_cost_us`` column.
    """
    graph = Graph.of(model)
    shapes = _Shapes(graph)
    rows: list[list[float]] = []
    producer: dict[str, int] = {}
    for name in graph.inputs:
        feats = [0.0] * NODE_DIM
        feats[_OP_INDEX["Input"]] = 1.0
        feats[len(OP_VOCAB) + 7] = _log10p(_numel(shapes[name][0]))
        producer[name] = len(rows)
        rows.append(feats)
    n_inputs = len(rows)
    for node in graph.nodes:
        idx = len(rows)
        row = _node_features(graph, node, shapes)
        if node_costs:
            row[_COST_COL] = cost_feature(node_costs.get(node.name, 0.0))
        rows.append(row)
        for o in outs(node):
            if o:
                producer[o] = idx
    links: list[tuple[int, int]] = []
    edges: list[list[float]] = []

    def connect(tensor: str, dst: int) -> None:
        src = producer.get(tensor)
        if src is None:
            return
        links.append((src, dst))
        shape, et = shapes[tensor]
        edges.append(_edge_features(shape, et))

    for k, node in enumerate(graph.nodes):
        for i in ins(node):
            if i:
                connect(i, n_inputs + k)
    for name in graph.outputs:
        feats = [0.0] * NODE_DIM
        feats[_OP_INDEX["Output"]] = 1.0
        feats[len(OP_VOCAB) + 7] = _log10p(_numel(shapes[name][0]))
        idx = len(rows)
        rows.append(feats)
        connect(name, idx)
    nodes = np.clip(np.asarray(rows, dtype=np.float32).reshape(-1, NODE_DIM), 0.0, FEATURE_HIGH)
    edge_arr = np.clip(np.asarray(edges, dtype=np.float32).reshape(-1, EDGE_DIM), 0.0, FEATURE_HIGH)
    link_arr = np.asarray(links, dtype=np.int64).reshape(-1, 2)
    return GraphInstance(nodes=nodes, edges=edge_arr, edge_links=link_arr)


# ---------------------------------------------------------------------------------------
# incremental featurization
# ---------------------------------------------------------------------------------------
class GraphFeatures:
    """Features of one graph plus the name indexes an update or a diff needs.

    ``instance`` equals :func:`featurize` ``(graph, node_costs)``; ``row_of`` maps node names (and
    ``"in:<tensor>"`` / ``"out:<tensor>"`` for graph inputs/outputs) to rows; ``edge_tensor[k]``
    names the tensor edge ``k`` carries.
    """

    __slots__ = ("instance", "row_of", "edge_tensor", "graph")

    def __init__(self, instance: GraphInstance, row_of: dict[str, int], edge_tensor: list[str], graph: Graph) -> None:
        self.instance = instance
        self.row_of = row_of
        self.edge_tensor = edge_tensor
        self.graph = graph


class IncrementalFeaturizer:
    """Featurize a sequence of graphs, each one rewrite from the last, recomputing only the rows
    of nodes whose wiring changed (new nodes, or kept nodes whose input/output names differ) and
    the edge features of tensors they write; everything else is reused by name. The result is
    identical to :func:`featurize` (the env test checks it on every step of random rollouts).
    """

    def __init__(self) -> None:
        self._rows: dict[str, tuple[tuple, list[float]]] = {}
        self._edge: dict[str, list[float]] = {}

    def features(self, graph: Graph, node_costs: dict[str, float] | None = None) -> GraphFeatures:
        """Features of ``graph`` (reusing rows of unchanged nodes of earlier graphs)."""
        shapes = _Shapes(graph)
        old_rows, old_edge = self._rows, self._edge
        rows_cache: dict[str, tuple[tuple, list[float]]] = {}
        edge_cache: dict[str, list[float]] = {}
        fresh_tensors: set[str] = set()
        rows: list[list[float]] = []
        row_of: dict[str, int] = {}
        producer: dict[str, int] = {}
        for name in graph.inputs:
            feats = [0.0] * NODE_DIM
            feats[_OP_INDEX["Input"]] = 1.0
            feats[len(OP_VOCAB) + 7] = _log10p(_numel(shapes[name][0]))
            producer[name] = row_of["in:" + name] = len(rows)
            rows.append(feats)
        n_inputs = len(rows)
        for node in graph.nodes:
            key = (node.op_type, tuple(ins(node)), tuple(outs(node)))
            hit = old_rows.get(node.name)
            if hit is None or hit[0] != key:
                hit = (key, _node_features(graph, node, shapes))
                fresh_tensors.update(o for o in key[2] if o)
            rows_cache[node.name] = hit
            row = list(hit[1])
            if node_costs:
                row[_COST_COL] = cost_feature(node_costs.get(node.name, 0.0))
            idx = row_of[node.name] = len(rows)
            rows.append(row)
            for o in key[2]:
                if o:
                    producer[o] = idx
        links: list[tuple[int, int]] = []
        edges: list[list[float]] = []
        edge_tensor: list[str] = []

        def connect(tensor: str, dst: int) -> None:
            src = producer.get(tensor)
            if src is None:
                return
            f = edge_cache.get(tensor)
            if f is None:
                f = old_edge.get(tensor) if tensor not in fresh_tensors else None
                if f is None:
                    shape, et = shapes[tensor]
                    f = _edge_features(shape, et)
                edge_cache[tensor] = f
            links.append((src, dst))
            edges.append(f)
            edge_tensor.append(tensor)

        for k, node in enumerate(graph.nodes):
            for i in rows_cache[node.name][0][1]:
                if i:
                    connect(i, n_inputs + k)
        for name in graph.outputs:
            feats = [0.0] * NODE_DIM
            feats[_OP_INDEX["Output"]] = 1.0
            feats[len(OP_VOCAB) + 7] = _log10p(_numel(shapes[name][0]))
            idx = row_of["out:" + name] = len(rows)
            rows.append(feats)
            connect(name, idx)
        self._rows, self._edge = rows_cache, edge_cache
        inst = GraphInstance(
            nodes=np.clip(np.asarray(rows, dtype=np.float32).reshape(-1, NODE_DIM), 0.0, FEATURE_HIGH),
            edges=np.clip(np.asarray(edges, dtype=np.float32).reshape(-1, EDGE_DIM), 0.0, FEATURE_HIGH),
            edge_links=np.asarray(links, dtype=np.int64).reshape(-1, 2))
        return GraphFeatures(inst, row_of, edge_tensor, graph)


class _DiffView:
    """What :func:`_node_features` reads (``is_initializer``), over a graph plus a diff's constants."""

    def __init__(self, graph: Graph, inits: dict) -> None:
        self.graph, self.inits = graph, inits

    def is_initializer(self, name: str) -> bool:
        return name in self.inits or self.graph.is_initializer(name)


def _value_shape(v) -> tuple[int | None, ...] | None:
    if v is None or v.shape is None:
        return None
    return tuple(d if isinstance(d, int) else None for d in v.shape.dims)


def diff_instance(base: GraphFeatures, diff, node_costs: dict[str, float] | None = None) -> GraphInstance:
    """See :func:`diff_parts` (this returns only the instance)."""
    return diff_parts(base, diff, node_costs)[0]


def diff_parts(base: GraphFeatures, diff, node_costs: dict[str, float] | None = None
               ) -> tuple[GraphInstance, np.ndarray, int, np.ndarray]:
    """The features of a candidate graph from the current graph's features and the candidate's
    :class:`~xflow.rewrites.candidates.EditDiff`, without building the candidate.

    Rows of removed and rewired nodes are dropped; the added nodes and the rewired nodes' new
    versions are appended (in the diff's order), with ``node_costs`` (``{name: ms}``) in the cost
    column; edges touching dropped rows are dropped and the edges into and out of the appended
    rows added. Equal to :func:`featurize` of the built candidate up to the order of nodes and
    edges (checked in the env test).
    """
    g = base.graph
    inst = base.instance
    drop_names = set(diff.removed) | set(diff.rewired)
    drop = np.fromiter((base.row_of[n] for n in drop_names if n in base.row_of), dtype=np.int64)
    n0 = inst.nodes.shape[0]
    keep = np.ones(n0, dtype=bool)
    keep[drop] = False
    remap = np.full(n0, -1, dtype=np.int64)
    remap[keep] = np.arange(int(keep.sum()))
    n_keep = int(keep.sum())
    new_nodes = list(diff.nodes) + list(diff.rewired_nodes)
    vals = diff.values
    shapes: dict[str, tuple] = {}

    def shape_of(t: str):
        if t not in shapes:
            v = vals.get(t)
            if v is not None:
                shapes[t] = (_value_shape(v), int(v.dtype) if v.dtype is not None else 0)
            elif t in diff.inits:
                a = diff.inits[t]
                shapes[t] = (tuple(a.shape), int(TensorProto.FLOAT) if a.dtype == np.float32 else 0)
            else:
                shapes[t] = (_shape(g, t), g.elem_type(t) or 0)
        return shapes[t]

    class _S(dict):
        def __missing__(self, t):
            return shape_of(t)

    view = _DiffView(g, diff.inits)
    rows = []
    producer: dict[str, int] = {}
    for k, node in enumerate(new_nodes):
        row = _node_features(view, node, _S())
        if node_costs:
            row[_COST_COL] = cost_feature(node_costs.get(node.name, 0.0))
        rows.append(row)
        for o in outs(node):
            if o:
                producer[o] = n_keep + k
    # edges of the base that survive
    links = inst.edge_links
    ok = keep[links[:, 0]] & keep[links[:, 1]] if len(links) else np.zeros(0, dtype=bool)
    kept_links = remap[links[ok]] if len(links) else links
    kept_edges = inst.edges[ok] if len(links) else inst.edges
    new_links: list[tuple[int, int]] = []
    new_edges: list[list[float]] = []

    def src_of(t: str) -> int:
        if t in producer:
            return producer[t]
        if "in:" + t in base.row_of:
            return int(remap[base.row_of["in:" + t]])
        p = g.producer(t)
        if p is None or p.name in drop_names:
            return -1
        return int(remap[base.row_of[p.name]])

    def add(t: str, dst: int) -> None:
        s = src_of(t)
        if s < 0:
            return
        sh, et = shape_of(t) if (t in vals or t in diff.inits) else (_shape(g, t), g.elem_type(t) or 0)
        new_links.append((s, dst))
        new_edges.append(_edge_features(sh, et))

    for k, node in enumerate(new_nodes):
        for t in ins(node):
            if t:
                add(t, n_keep + k)
    # readers of the appended rows' outputs that survive (kept consumers and graph outputs)
    for k, node in enumerate(new_nodes):
        for o in outs(node):
            if not o:
                continue
            for c in g.consumers(o):
                if c.name not in drop_names:
                    for t in dict.fromkeys(ins(c)):
                        if t == o:
                            for _ in range(sum(1 for x in ins(c) if x == o)):
                                add(o, int(remap[base.row_of[c.name]]))
            if "out:" + o in base.row_of:
                add(o, int(remap[base.row_of["out:" + o]]))
    nodes = np.concatenate([inst.nodes[keep], np.clip(np.asarray(rows, dtype=np.float32).reshape(-1, NODE_DIM), 0.0, FEATURE_HIGH)])
    edges = np.concatenate([kept_edges, np.clip(np.asarray(new_edges, dtype=np.float32).reshape(-1, EDGE_DIM), 0.0, FEATURE_HIGH)])
    link_arr = np.concatenate([kept_links.reshape(-1, 2), np.asarray(new_links, dtype=np.int64).reshape(-1, 2)])
    if len(links):
        lost = remap[links[~ok].reshape(-1)]
        touched = np.unique(lost[lost >= 0])
    else:
        touched = np.zeros(0, dtype=np.int64)
    return (GraphInstance(nodes=nodes, edges=edges, edge_links=link_arr), np.flatnonzero(keep),
            int(kept_links.reshape(-1, 2).shape[0]), touched)
