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
_N_NUMERIC = 8
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
        float(len(node.outputs)), _log10p(_numel(out_shape)),
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


def featurize(model: Graph | onnx.ModelProto) -> GraphInstance:
    """Featurize ``model`` into a :class:`GraphInstance` that lies in :func:`graph_space`.

    Deterministic: the same model content gives identical arrays (node order = graph inputs,
    operators in graph order, graph outputs).
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
        rows.append(_node_features(graph, node, shapes))
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
