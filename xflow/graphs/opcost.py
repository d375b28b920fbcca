r"""The one FLOP and byte count per operator, from the IR's static shapes.

Every cost model (:mod:`xflow.costs`), PyG feature and the parallelizer's node weights read these
two numbers, so "how much work is this node" means one thing everywhere.

FLOPs :math:`F_v` (a multiply-add counts 2):

=====================================  ===================================================
op                                     :math:`F_v`
=====================================  ===================================================
``Conv``                               :math:`2\,|Y|\,\prod W_{1:}` (:math:`C_{in}/g \cdot k`)
``ConvTranspose``                      :math:`2\,|X|\,\prod W_{1:}` (:math:`C_{out}/g \cdot k`)
``MatMul``                             :math:`2\,|Y|\,K` with :math:`K` = last dim of A
``Gemm``                               :math:`2\,|Y|\,K` (:math:`K` = A's first dim if ``transA``)
``MaxPool`` / ``AveragePool`` / ``LpPool``  :math:`|Y| \prod \text{kernel}`
global pools, ``Reduce*``              :math:`|X|`
data movement (:data:`MOVE_OPS`)       0
shape-only ops (:data:`FREE_OPS`)      0
other ops                              :math:`c_{op}\,|Y|` with :data:`ELEMENTWISE_FLOPS` (default 1)
=====================================  ===================================================

Bytes :math:`B_v` are the sizes of every input (weights included) and output; 0 for the
shape-only :data:`FREE_OPS` (views: runtimes do not move data for them). Unknown shapes count 0.
"""
from __future__ import annotations

import math

import onnx_ir as ir

from xflow.graphs.ir import Graph, attrs, ins, outs

__all__ = ["FREE_OPS", "MOVE_OPS", "ELEMENTWISE_FLOPS", "op_flops", "op_bytes", "tensor_bytes", "numel"]

#: Shape-only ops: no FLOPs, no bytes moved.
FREE_OPS = frozenset({"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Shape", "Size",
                      "Constant", "Dropout"})
#: Data-movement ops: bytes, no FLOPs.
MOVE_OPS = frozenset({"Transpose", "Concat", "Split", "Slice", "Gather", "GatherElements", "Pad",
                      "Expand", "Tile", "Cast", "Resize", "DepthToSpace", "SpaceToDepth",
                      "ConstantOfShape", "Where"})
#: FLOPs per output element of elementwise and normalisation ops (others: 1).
ELEMENTWISE_FLOPS = {
    "Add": 1, "Sub": 1, "Mul": 1, "Div": 1, "Relu": 1, "Sigmoid": 4, "Tanh": 4, "Exp": 4, "Log": 4,
    "Erf": 8, "Sqrt": 2, "Pow": 4, "Softmax": 5, "LogSoftmax": 5, "LayerNormalization": 8,
    "Gelu": 10, "BatchNormalization": 2, "InstanceNormalization": 8, "Clip": 1, "LeakyRelu": 2,
    "HardSigmoid": 2, "HardSwish": 3, "Elu": 4, "Selu": 4, "Softplus": 4,
}
_GLOBAL = frozenset({"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "ReduceMean", "ReduceSum",
                     "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceL1", "ReduceSumSquare",
                     "ReduceLogSumExp"})


def numel(shape) -> int:
    """Elements of a static shape (0 when ``None``)."""
    return math.prod(shape) if shape is not None else 0


def tensor_bytes(graph: Graph, tensor: str) -> int:
    """Bytes of ``tensor`` (0 when its shape is not static; 4 bytes per element when untyped)."""
    shp = graph.shape(tensor)
    if shp is None:
        return 0
    et = graph.elem_type(tensor)
    size = 4
    if et:
        try:
            size = int(ir.DataType(et).itemsize) or 4
        except Exception:  # noqa: BLE001 - exotic element types
            size = 4
    return numel(shp) * size


def op_flops(graph: Graph, node: ir.Node) -> float:
    """Floating-point operations of ``node`` (see the module docstring)."""
    op = node.op_type
    if op in FREE_OPS or op in MOVE_OPS:
        return 0.0
    i, o = ins(node), outs(node)
    out = graph.shape(o[0]) if o and o[0] else None
    if op in ("Conv", "ConvTranspose"):
        w = graph.shape(i[1]) if len(i) > 1 and i[1] else None
        base = out if op == "Conv" else (graph.shape(i[0]) if i and i[0] else None)
        if base is None or w is None:
            return 0.0
        return 2.0 * numel(base) * numel(w[1:])
    if op in ("MatMul", "Gemm"):
        a = graph.shape(i[0]) if i and i[0] else None
        if out is None or not a:
            return 0.0
        k = a[0] if (op == "Gemm" and int(attrs(node).get("transA", 0))) else a[-1]
        return 2.0 * numel(out) * k
    if op in ("MaxPool", "AveragePool", "LpPool"):
        return float(numel(out) * numel(attrs(node).get("kernel_shape", (1,))))
    if op in _GLOBAL:
        return float(numel(graph.shape(i[0]) if i and i[0] else None))
    return float(numel(out) * ELEMENTWISE_FLOPS.get(op, 1))


def op_bytes(graph: Graph, node: ir.Node) -> float:
    """Bytes ``node`` reads and writes: all inputs (weights too) and outputs; 0 for :data:`FREE_OPS`."""
    if node.op_type in FREE_OPS:
        return 0.0
    return float(sum(tensor_bytes(graph, t) for t in ins(node) + outs(node) if t))
