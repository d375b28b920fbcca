"""Convert a :class:`~xflow.graphs.model.Graph` to a PyTorch Geometric ``Data`` object.

One PyG node per ONNX operator (graph order), one directed edge per
(producer node -> consumer node, tensor) pair. Graph inputs and initializers are not nodes:
their information lives in the operator features (weight shapes) instead.

Node features ``x`` (``num_nodes x NUM_NODE_FEATURES``, float32):

* ``len(OP_VOCAB) + 1`` one-hot columns: the op type's position in :data:`OP_VOCAB`, or the
  last column ("other") for op types outside the vocabulary;
* :data:`NODE_ATTR_FEATURES`, in order:

  - ``kernel_h, kernel_w`` — spatial kernel (Conv/ConvTranspose/pools; 1-D kernels are
    ``(1, k)``; ``0`` for other ops), ``stride_h, stride_w``, ``pad_h, pad_w`` (begin + end
    padding per axis), ``dilation_h, dilation_w`` — raw small integers;
  - ``log_groups = ln(1 + group)``;
  - ``log_out_channels = ln(1 + C_out)`` — Conv: ``W.shape[0]``; ConvTranspose:
    ``W.shape[1] * group``; MatMul/Gemm: last output dimension; otherwise 0;
  - ``log_flops = ln(1 + F)`` with the one FLOP count :func:`xflow.graphs.opcost.op_flops`
    (multiply-add = 2 FLOPs; Conv ``2 * numel(Y) * C_in/g * kh * kw``, MatMul ``2 * numel(Y) * K``,
    …; 0 when shapes are unknown).

Edge features ``edge_attr`` (``num_edges x NUM_EDGE_FEATURES``) for the tensor on the edge, in
the order of :data:`EDGE_FEATURES`: ``rank``, ``ln(1 + numel)``, the first four dimensions as
``ln(1 + d) / 10`` (0 where the tensor has fewer dimensions or they are symbolic), and the
ONNX ``TensorProto`` dtype code (``FLOAT = 1``, ``INT64 = 7``, …).

Readable mapping back: ``data.node_names[i]`` is the ONNX node name of PyG node ``i``,
``data.op_types[i]`` its op type and ``data.edge_tensors[j]`` the tensor on edge ``j``.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import onnx
import onnx_ir as ir

from xflow.graphs.ir import Graph, attrs, ins, outs
from xflow.graphs.opcost import op_flops
from xflow.graphs.model import load_model

__all__ = [
    "OP_VOCAB",
    "NODE_ATTR_FEATURES",
    "EDGE_FEATURES",
    "NUM_NODE_FEATURES",
    "NUM_EDGE_FEATURES",
    "op_one_hot_index",
    "node_features",
    "edge_features",
    "to_pyg",
    "onnx_to_pyg",
]

#: Fixed op-type vocabulary (order is part of the feature format; append only).
OP_VOCAB: tuple[str, ...] = (
    "Conv", "ConvTranspose", "BatchNormalization", "InstanceNormalization",
    "LayerNormalization", "Relu", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "HardSigmoid",
    "HardSwish", "Clip", "Gelu", "Erf", "Softmax", "LogSoftmax", "MaxPool", "AveragePool",
    "GlobalAveragePool", "GlobalMaxPool", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Pow",
    "Sqrt", "Exp", "ReduceMean", "ReduceSum", "Concat", "Split", "Slice", "Transpose",
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Gather", "Shape", "Cast", "Expand", "Where",
    "Pad", "Resize", "Dropout", "Identity", "Constant", "ConstantOfShape", "Tile", "Range",
    "Equal", "Einsum",
)
_OP_INDEX = {op: i for i, op in enumerate(OP_VOCAB)}

#: Names of the numeric node-feature columns that follow the one-hot block.
NODE_ATTR_FEATURES: tuple[str, ...] = (
    "kernel_h", "kernel_w", "stride_h", "stride_w", "pad_h", "pad_w", "dilation_h",
    "dilation_w", "log_groups", "log_out_channels", "log_flops",
)
#: Names of the edge-feature columns.
EDGE_FEATURES: tuple[str, ...] = ("rank", "log_numel", "dim0", "dim1", "dim2", "dim3", "dtype")

NUM_NODE_FEATURES = len(OP_VOCAB) + 1 + len(NODE_ATTR_FEATURES)
NUM_EDGE_FEATURES = len(EDGE_FEATURES)

_CONV_LIKE = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool"}


def op_one_hot_index(op_type: str) -> int:
    """Column of ``op_type`` in the one-hot block (``len(OP_VOCAB)`` means "other")."""
    return _OP_INDEX.get(op_type, len(OP_VOCAB))


def _hw(values: Sequence[int] | None, default: int) -> tuple[int, int]:
    """Last two spatial entries (1-D -> (default, v))."""
    if not values:
        return default, default
    vals = [int(v) for v in values]
    return (vals[-2], vals[-1]) if len(vals) >= 2 else (default, vals[0])


def _shape(g: Graph, name: str) -> tuple[int, ...] | None:
    info = g.tensors.get(name)
    return info.shape if info is not None and info.is_static else None  # type: ignore[return-value]


def _numel(shape: Sequence[int] | None) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape is not None else 0


def node_features(g: Graph, node: ir.Node) -> list[float]:
    """The :data:`NODE_ATTR_FEATURES` values of one node (without the one-hot block)."""
    a = attrs(node)
    inputs = ins(node)
    op = node.op_type
    kh = kw = sh = sw = ph = pw = dh = dw = 0
    groups = 0
    cout = 0
    if op in _CONV_LIKE:
        ks = a.get("kernel_shape")
        if not ks and op in ("Conv", "ConvTranspose") and len(inputs) > 1:
            w = _shape(g, inputs[1])
            ks = list(w[2:]) if w is not None else None
        kh, kw = _hw(ks, 1) if ks else (0, 0)
        nsp = len(ks) if ks else 2
        sh, sw = _hw(a.get("strides") or [1] * nsp, 1)
        dh, dw = _hw(a.get("dilations") or [1] * nsp, 1)
        pads = list(a.get("pads") or [0] * (2 * nsp))
        half = len(pads) // 2
        per_axis = [pads[i] + pads[i + half] for i in range(half)]
        ph, pw = _hw(per_axis, 0)
        groups = int(a.get("group", 1)) if op in ("Conv", "ConvTranspose") else 0
        if op in ("Conv", "ConvTranspose") and len(inputs) > 1:
            w = _shape(g, inputs[1])
            if w is not None:
                cout = w[0] if op == "Conv" else w[1] * max(groups, 1)
    elif op in ("MatMul", "Gemm"):
        out = _shape(g, outs(node)[0])
        cout = out[-1] if out else 0
    return [
        float(kh), float(kw), float(sh), float(sw), float(ph), float(pw), float(dh), float(dw),
        math.log1p(groups), math.log1p(cout), math.log1p(op_flops(g, node)),
    ]


def edge_features(g: Graph, tensor: str) -> list[float]:
    """The :data:`EDGE_FEATURES` values of one tensor."""
    info = g.tensors.get(tensor)
    shape = info.shape if info is not None and info.shape is not None else ()
    dims = [math.log1p(d) / 10.0 if isinstance(d, int) else 0.0 for d in shape[:4]]
    dims += [0.0] * (4 - len(dims))
    numel = info.numel if info is not None else None
    dtype_code = 0
    if info is not None and info.dtype is not None:
        try:
            dtype_code = onnx.helper.np_dtype_to_tensor_dtype(info.dtype)
        except Exception:
            dtype_code = 0
    return [float(len(shape)), math.log1p(numel or 0), *dims, float(dtype_code)]


def to_pyg(graph: Graph | onnx.ModelProto):
    """Convert ``graph`` to ``torch_geometric.data.Data`` (feature layout in the module docstring).

    Returns a ``Data`` with ``x``, ``edge_index``, ``edge_attr`` and the readable mapping
    ``node_names``, ``op_types``, ``edge_tensors`` (Python lists).
    """
    import torch
    from torch_geometric.data import Data

    if not isinstance(graph, Graph):
        graph = load_model(graph)
    nodes = graph.nodes
    index = {id(n): i for i, n in enumerate(nodes)}
    n_vocab = len(OP_VOCAB) + 1
    x = np.zeros((len(nodes), NUM_NODE_FEATURES), np.float32)
    for i, node in enumerate(nodes):
        x[i, op_one_hot_index(node.op_type)] = 1.0
        x[i, n_vocab:] = node_features(graph, node)
    src: list[int] = []
    dst: list[int] = []
    attrs: list[list[float]] = []
    tensors: list[str] = []
    for i, node in enumerate(nodes):
        for out in outs(node):
            if not out:
                continue
            feats = None
            for c in graph.consumers(out):
                feats = feats or edge_features(graph, out)
                src.append(i)
                dst.append(index[id(c)])
                attrs.append(feats)
                tensors.append(out)
    data = Data(
        x=torch.from_numpy(x),
        edge_index=torch.tensor([src, dst], dtype=torch.long).reshape(2, -1),
        edge_attr=torch.tensor(attrs, dtype=torch.float32).reshape(-1, NUM_EDGE_FEATURES),
        num_nodes=len(nodes),
    )
    data.node_names = [n.name for n in nodes]
    data.op_types = [n.op_type for n in nodes]
    data.edge_tensors = tensors
    return data


#: Alias named after the conversion (PyG style: explicit converters).
onnx_to_pyg = to_pyg
