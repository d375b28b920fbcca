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
from xflow.graphs.edit import Editor
from xflow.graphs.ir import Graph, attrs, ins, outs

__all__ = ["FoldScaleIntoConv", "FoldScaleIntoMatMul", "fold_into_conv_rule", "fold_into_matmul_rule"]


def _other(node, t: str) -> str:
    return ins(node)[1] if ins(node)[0] == t else ins(node)[0]


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


def _bn_scale_shift(view: Graph, bn, n: int):
    a = attrs(bn)
    if int(a.get("training_mode", 0)):
        return "BatchNormalization in training mode"
    if len(outs(bn)) > 1 and any(outs(bn)[1:]):
        return "BatchNormalization exposes running statistics"
    vals = [view.const(t) for t in ins(bn)[1:5]]
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

    def _sites(self, view: Graph) -> Iterable[Location]:
        for n in view.nodes:
            if n.op_type == "Conv":
                for u in view.consumers(outs(n)[0]):
                    if u.op_type in ("Mul", "Add", "BatchNormalization"):
                        yield Location.of((n.name, u.name))

    def _scale_shift(self, view: Graph, loc: Location):
        conv, op = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        ci = conv_info(view, conv)
        if isinstance(ci, str):
            return ci
        if view.sole_consumer(outs(conv)[0]) is not op:
            return "conv output has other consumers"
        n = ci.out_channels
        if op.op_type == "BatchNormalization":
            if ins(op)[0] != outs(conv)[0]:
                return "conv output is not the normalised input"
            ss = _bn_scale_shift(view, op, n)
            return ss if isinstance(ss, str) else (ci, ss[0], ss[1])
        c = view.const(_other(op, outs(conv)[0]))
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

    def _check(self, view: Graph, loc: Location) -> str | None:
        r = self._scale_shift(view, loc)
        return r if isinstance(r, str) else None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        op = view.node(loc.nodes[1])
        ci, s, t = self._scale_shift(view, loc)
        shape = (-1,) + (1,) * (ci.w.ndim - 1)
        w = (ci.w.astype(np.float64) * s.reshape(shape)).astype(ci.w.dtype)
        b = (ci.bias_or_zeros().astype(np.float64) * s + t).astype(ci.w.dtype)
        inputs = [ci.x, ed.add_initializer(f"{ci.node.name}/folded_W", w),
                  ed.add_initializer(f"{ci.node.name}/folded_B", b)]
        ed.remove(ci.node, op)
        ed.add_node("Conv", inputs, [outs(op)[0]], name=f"{ci.node.name}/folded", **conv_attrs(ci))


class FoldScaleIntoMatMul(Rule):
    """``Mul(x·W, s) -> x·(W·diag s)``; ``Mul/Add(Gemm(x, W, c), s)`` into Gemm. Location: ``(mm, op)``."""

    name = "fold_into_matmul"

    def _sites(self, view: Graph) -> Iterable[Location]:
        for n in view.nodes:
            if n.op_type in ("MatMul", "Gemm"):
                for u in view.consumers(outs(n)[0]):
                    if u.op_type in ("Mul", "Add"):
                        yield Location.of((n.name, u.name))

    def _parts(self, view: Graph, loc: Location):
        mm, op = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        if view.sole_consumer(outs(mm)[0]) is not op:
            return "MatMul output has other consumers"
        w = view.const(ins(mm)[1])
        if w is None or w.ndim != 2:
            return "right operand is not a 2-D constant"
        if mm.op_type == "MatMul" and op.op_type == "Add":
            return "MatMul + Add is a Gemm pattern ORT fuses itself (nothing to fold)"
        a = attrs(mm)
        if mm.op_type == "Gemm" and int(a.get("transA", 0)):
            return "Gemm with transA"
        n = w.shape[0] if (mm.op_type == "Gemm" and int(a.get("transB", 0))) else w.shape[1]
        c = view.const(_other(op, outs(mm)[0]))
        if c is None:
            return f"{op.op_type} operand is not constant"
        if c.dtype != w.dtype:
            return "constant dtype differs from the weights"
        out_shape = view.shape(outs(mm)[0])
        if out_shape is None:
            return "MatMul output shape is not static"
        v = _channel_vector(c, n, len(out_shape) - 1, len(out_shape))
        if isinstance(v, str):
            return v
        if mm.op_type == "Gemm" and len(ins(mm)) > 2 and ins(mm)[2] and view.const(ins(mm)[2]) is None:
            return "Gemm C is not constant"
        return mm, op, w, n, v

    def _check(self, view: Graph, loc: Location) -> str | None:
        r = self._parts(view, loc)
        return r if isinstance(r, str) else None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        mm, op, w, n, v = self._parts(view, loc)
        ed.remove(mm, op)
        if mm.op_type == "MatMul":
            w2 = (w.astype(np.float64) * v.reshape(1, -1)).astype(w.dtype)
            ed.add_node("MatMul", [ins(mm)[0], ed.add_initializer(f"{mm.name}/folded_W", w2)],
                        [outs(op)[0]], name=f"{mm.name}/folded")
            return
        a = attrs(mm)
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        trans_b = int(a.get("transB", 0))
        wt = (w.T if trans_b else w).astype(np.float64) * alpha
        c = np.zeros(n)
        if len(ins(mm)) > 2 and ins(mm)[2]:
            c = view.const(ins(mm)[2]).astype(np.float64) * beta
            c = np.broadcast_to(c, np.broadcast_shapes(c.shape, (n,))).copy()
        if op.op_type == "Mul":
            wt = wt * v.reshape(1, -1)
            c = c * v
        else:
            c = c + v
        ed.add_node("Gemm", [ins(mm)[0], ed.add_initializer(f"{mm.name}/folded_W", wt.astype(w.dtype)),
                             ed.add_initializer(f"{mm.name}/folded_C", np.asarray(c, dtype=w.dtype))],
                    [outs(op)[0]], name=f"{mm.name}/folded")


fold_into_conv_rule = FoldScaleIntoConv()
fold_into_matmul_rule = FoldScaleIntoMatMul()
