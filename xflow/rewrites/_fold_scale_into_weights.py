r"""Fold a constant Mul / Add / BatchNormalization that follows a Conv, MatMul or Gemm into its weights.

For a conv with weights ``W`` (``Cout×…``), bias ``b`` and a per-output-channel constant ``s``
(a scalar or shape ``(Cout, 1, …)`` / ``(1, Cout, 1, …)``)::

    Mul(Conv(x, W, b), s)  ->  Conv(x, s·W, s·b)
    Add(Conv(x, W, b), t)  ->  Conv(x, W, b + t)
    BatchNormalization(Conv(x, W, b), γ, β, μ, σ²)  ->  Conv(x, s·W, s·(b - μ) + β),  s = γ/√(σ²+ε)

For a projection ``x·W`` (``W``: ``K×N`` constant) and ``s`` a scalar or shape ``(N,)``/``(1, N)``::

    Mul(MatMul(x, W), s)      ->  MatMul(x, W·diag(s))
    Mul(Gemm(x, W, c), s)     ->  Gemm(x, W·diag(s), s·c)
    Add(Gemm(x, W, c), t)     ->  Gemm(x, W, c + t)

The constant must not broadcast the result to a larger shape, and the Conv/MatMul output must
have the Mul/Add as its only consumer.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from xflow.rewrites._base import Location, Rule
from xflow.rewrites._conv_common import conv_attrs, conv_info
from xflow.rewrites._graph import Editor, GraphView, attrs_of

__all__ = ["FoldScaleIntoConv", "FoldScaleIntoMatMul", "fold_into_conv_rule", "fold_into_matmul_rule"]


def _other(node, t: str) -> str:
    return node.input[1] if node.input[0] == t else node.input[0]


def _channel_vector(c: np.ndarray, n: int, axis: int, rank: int) -> np.ndarray | str:
    """``c`` as a length-``n`` vector if it broadcasts along ``axis`` of a rank-``rank`` tensor only."""
    if c.size == 1:
        return np.full(n, c.reshape(()), dtype=c.dtype)
    if c.ndim > rank:
        return "constant has more dims than the output"
    shape = (1,) * (rank - c.ndim) + tuple(c.shape)
    for i, d in enumerate(shape):
        if i == axis and d not in (1, n):
            return f"constant has {d} entries on the channel axis, expected {n}"
        if i != axis and d != 1:
            return f"constant varies along axis {i} (not only channels)"
    return np.broadcast_to(c.reshape(shape), tuple(n if i == axis else 1 for i in range(rank))).reshape(-1).copy()


def _bn_scale_shift(view: GraphView, bn, n: int):
    a = attrs_of(bn)
    if int(a.get("training_mode", 0)):
        return "BatchNormalization in training mode"
    if len(bn.output) > 1 and any(bn.output[1:]):
        return "BatchNormalization exposes running statistics"
    vals = [view.const(t) for t in bn.input[1:5]]
    if any(v is None for v in vals):
        return "BatchNormalization parameters are not constant"
    g, beta, mean, var = (v.astype(np.float64).reshape(-1) for v in vals)
    if any(v.size != n for v in (g, beta, mean, var)):
        return "BatchNormalization parameters do not match the channels"
    s = g / np.sqrt(var + float(a.get("epsilon", 1e-5)))
    return s, beta - s * mean


class FoldScaleIntoConv(Rule):
    """``Mul/Add/BatchNormalization(Conv(x, W, b), c) -> Conv(x, W', b')``. Location: ``(conv, op)``."""

    name = "fold_into_conv"

    def _sites(self, view: GraphView) -> Iterable[Location]:
        for n in view.nodes:
            if n.op_type == "Conv":
                for u in view.uses(n.output[0]):
                    if u.op_type in ("Mul", "Add", "BatchNormalization"):
                        yield Location.of((n.name, u.name))

    def _scale_shift(self, view: GraphView, loc: Location):
        conv, op = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        ci = conv_info(view, conv)
        if isinstance(ci, str):
            return ci
        if view.sole_consumer(conv.output[0]) is not op:
            return "conv output has other consumers"
        n = ci.out_channels
        if op.op_type == "BatchNormalization":
            if op.input[0] != conv.output[0]:
                return "conv output is not the normalised input"
            ss = _bn_scale_shift(view, op, n)
            return ss if isinstance(ss, str) else (ci, ss[0], ss[1])
        c = view.const(_other(op, conv.output[0]))
        if c is None:
            return f"{op.op_type} operand is not constant"
        if c.dtype != ci.w.dtype:
            return "constant dtype differs from the weights"
        rank = ci.w.ndim
        v = _channel_vector(c, n, 1, rank)
        if isinstance(v, str):
            return v
        if op.op_type == "Mul":
            return ci, v.astype(np.float64), np.zeros(n)
        return ci, np.ones(n), v.astype(np.float64)

    def _check(self, view: GraphView, loc: Location) -> str | None:
        r = self._scale_shift(view, loc)
        return r if isinstance(r, str) else None

    def _rewrite(self, view: GraphView, loc: Location, ed: Editor) -> None:
        op = view.node(loc.nodes[1])
        ci, s, t = self._scale_shift(view, loc)
        shape = (-1,) + (1,) * (ci.w.ndim - 1)
        w = (ci.w.astype(np.float64) * s.reshape(shape)).astype(ci.w.dtype)
        b = (ci.bias_or_zeros().astype(np.float64) * s + t).astype(ci.w.dtype)
        inputs = [ci.x, ed.add_initializer(f"{ci.node.name}/folded_W", w),
                  ed.add_initializer(f"{ci.node.name}/folded_B", b)]
        ed.remove(ci.node, op)
        ed.add_node("Conv", inputs, [op.output[0]], name=f"{ci.node.name}/folded", **conv_attrs(ci))


class FoldScaleIntoMatMul(Rule):
    """``Mul(x·W, s) -> x·(W·diag s)``; ``Mul/Add(Gemm(x, W, c), s)`` into Gemm. Location: ``(mm, op)``."""

    name = "fold_into_matmul"

    def _sites(self, view: GraphView) -> Iterable[Location]:
        for n in view.nodes:
            if n.op_type in ("MatMul", "Gemm"):
                for u in view.uses(n.output[0]):
                    if u.op_type in ("Mul", "Add"):
                        yield Location.of((n.name, u.name))

    def _parts(self, view: GraphView, loc: Location):
        mm, op = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        if view.sole_consumer(mm.output[0]) is not op:
            return "MatMul output has other consumers"
        w = view.const(mm.input[1])
        if w is None or w.ndim != 2:
            return "right operand is not a 2-D constant"
        if mm.op_type == "MatMul" and op.op_type == "Add":
            return "MatMul + Add is a Gemm pattern ORT fuses itself (nothing to fold)"
        a = attrs_of(mm)
        if mm.op_type == "Gemm" and int(a.get("transA", 0)):
            return "Gemm with transA"
        n = w.shape[0] if (mm.op_type == "Gemm" and int(a.get("transB", 0))) else w.shape[1]
        c = view.const(_other(op, mm.output[0]))
        if c is None:
            return f"{op.op_type} operand is not constant"
        if c.dtype != w.dtype:
            return "constant dtype differs from the weights"
        out_shape = view.shape(mm.output[0])
        if out_shape is None:
            return "MatMul output shape is not static"
        v = _channel_vector(c, n, len(out_shape) - 1, len(out_shape))
        if isinstance(v, str):
            return v
        if mm.op_type == "Gemm" and len(mm.input) > 2 and mm.input[2] and view.const(mm.input[2]) is None:
            return "Gemm C is not constant"
        return mm, op, w, n, v

    def _check(self, view: GraphView, loc: Location) -> str | None:
        r = self._parts(view, loc)
        return r if isinstance(r, str) else None

    def _rewrite(self, view: GraphView, loc: Location, ed: Editor) -> None:
        mm, op, w, n, v = self._parts(view, loc)
        ed.remove(mm, op)
        if mm.op_type == "MatMul":
            w2 = (w.astype(np.float64) * v.reshape(1, -1)).astype(w.dtype)
            ed.add_node("MatMul", [mm.input[0], ed.add_initializer(f"{mm.name}/folded_W", w2)],
                        [op.output[0]], name=f"{mm.name}/folded")
            return
        a = attrs_of(mm)
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        trans_b = int(a.get("transB", 0))
        wt = (w.T if trans_b else w).astype(np.float64) * alpha
        c = np.zeros(n)
        if len(mm.input) > 2 and mm.input[2]:
            c = view.const(mm.input[2]).astype(np.float64) * beta
            c = np.broadcast_to(c, np.broadcast_shapes(c.shape, (n,))).copy()
        if op.op_type == "Mul":
            wt = wt * v.reshape(1, -1)
            c = c * v
        else:
            c = c + v
        ed.add_node("Gemm", [mm.input[0], ed.add_initializer(f"{mm.name}/folded_W", wt.astype(w.dtype)),
                             ed.add_initializer(f"{mm.name}/folded_C", np.asarray(c, dtype=w.dtype))],
                    [op.output[0]], name=f"{mm.name}/folded")


fold_into_conv_rule = FoldScaleIntoConv()
fold_into_matmul_rule = FoldScaleIntoMatMul()
