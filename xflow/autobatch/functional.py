"""Recording functions: the per-example vocabulary of the lazy graph.

Each function records one node in the graph of its operands (leaf makers such as :func:`lookup`
and :func:`inp` use the innermost active ``with Graph():``) and returns an :class:`Expr`. Shapes are
*per example* (no batch dimension); shape errors are raised here, at record time.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from xflow.errors import ShapeMismatch

from .graph import Expr, Graph, _creation_site, current_graph

__all__ = [
    "inp", "param", "lookup", "affine", "affine_tanh", "linear", "add", "sub", "mul", "scale", "neg",
    "tanh", "sigmoid", "relu", "concat", "slice_", "pick", "esum", "sum_elems",
    "softmax", "log_softmax", "cross_entropy",
]


def _graph_of(xs: Sequence[Expr], op: str) -> Graph:
    for x in xs:
        if isinstance(x, Expr):
            return x.graph
    if xs:
        raise ShapeMismatch(f"{op}: operands must be autobatch Exprs, got {[type(x).__name__ for x in xs]}")
    return current_graph()


def inp(value: Any, requires_grad: bool = False) -> Expr:
    """A constant input leaf in the current graph (tensor or nested numbers)."""
    return current_graph().input(value, requires_grad=requires_grad)


def param(p: torch.Tensor) -> Expr:
    """A parameter tensor as an expression operand (e.g. a learned initial state)."""
    return current_graph().param(p)


def lookup(table: torch.Tensor, index: int, sparse: bool = False) -> Expr:
    """Row ``index`` of an embedding ``table (V, d)`` → ``(d,)``. Batches into one ``F.embedding``.

    ``sparse=True`` gives the table a sparse gradient (only the rows used), as DyNet's lookup
    parameters do; it is part of the signature.
    """
    index = int(index)
    g = current_graph()
    sparse = bool(sparse)
    sid = g._sig_ids.get(("lookup", (sparse,), id(table), -1))
    if sid is not None and 0 <= index < g._sig_params[sid][0].shape[0]:
        return g._push(sid, -1, -1, index)
    if not 0 <= index < table.shape[0]:
        raise ShapeMismatch(f"lookup: index {index} is out of range for a table of shape "
                            f"{tuple(table.shape)} (created at {_creation_site()})")
    return g.record("lookup", (), (table,), (sparse,), data=index)


def affine(bias: torch.Tensor | Sequence[torch.Tensor] | None, *pairs: Any) -> Expr:
    """``bias + W_1 x_1 + W_2 x_2 + …`` (DyNet's ``affine_transform``): ``affine(b, W1, x1, W2, x2)``.

    Weights and bias are shared parameter tensors (part of the signature, so nodes using the same
    weights batch into one ``addmm``); the ``x_k`` are vector expressions. ``bias`` may be a tuple
    of vectors that are summed (PyTorch's ``b_ih + b_hh``) or ``None``.
    """
    return _affine("affine", bias, pairs)


def affine_tanh(bias: torch.Tensor | Sequence[torch.Tensor] | None, *pairs: Any) -> Expr:
    """``tanh(bias + W_1 x_1 + …)`` as **one** node: the same value as ``tanh(affine(…))``, one batch
    (one ``addmm`` chain with an in-place ``tanh_``) instead of two, and in backward
    ``g_z = g_y ⊙ (1 − y²)`` computed in place before the affine's own backward. DyNet has no such
    op; its graph is ``tanh(affine_transform(…))``, what :func:`affine` + :func:`tanh` record."""
    return _affine("affine_tanh", bias, pairs)


def _affine(op: str, bias: torch.Tensor | Sequence[torch.Tensor] | None, pairs: tuple) -> Expr:
    n = len(pairs)
    if n == 2 or n == 4:  # fast paths: one tensor bias (or none) and one or two pairs, signature already known
        x = pairs[1]
        if x.__class__ is Expr:
            g = x.graph
            if n == 2:
                if bias is None:
                    key = (op, (0,), id(pairs[0]), -1, x.tid)
                elif bias.__class__ is tuple:
                    key = None
                else:
                    key = (op, (1,), id(bias), id(pairs[0]), -1, x.tid)
                sid = g._sig_ids.get(key) if key is not None else None
                if sid is not None:
                    return g._push(sid, x.node)
            else:
                y = pairs[3]
                if y.__class__ is Expr and y.graph is g:
                    if bias.__class__ is tuple and len(bias) == 2:
                        key = (op, (2,), id(bias[0]), id(bias[1]), id(pairs[0]), id(pairs[2]), -1, x.tid, y.tid)
                    elif bias is not None and bias.__class__ is not tuple:
                        key = (op, (1,), id(bias), id(pairs[0]), id(pairs[2]), -1, x.tid, y.tid)
                    else:
                        key = None
                    sid = g._sig_ids.get(key) if key is not None else None
                    if sid is not None:
                        return g._push(sid, x.node, y.node)
    elif n == 6 and bias is not None and bias.__class__ is not tuple:  # three pairs, one tensor bias
        x, y, z = pairs[1], pairs[3], pairs[5]
        if x.__class__ is Expr and y.__class__ is Expr and z.__class__ is Expr:
            g = x.graph
            if y.graph is g and z.graph is g:
                sid = g._sig_ids.get((op, (1,), id(bias), id(pairs[0]), id(pairs[2]), id(pairs[4]), -1,
                                      x.tid, y.tid, z.tid))
                if sid is not None:
                    return g._push(sid, x.node, y.node, extra=z.node)
    if n % 2 or not pairs:
        raise ShapeMismatch(f"{op}: expects {op}(bias, W1, x1[, W2, x2 ...]) with matching W/x pairs")
    weights = pairs[0::2]
    xs = pairs[1::2]
    g = _graph_of(xs, op)
    biases = () if bias is None else ((bias,) if isinstance(bias, torch.Tensor) else tuple(bias))
    return g.record(op, xs, biases + tuple(weights), (len(biases),))


def linear(W: torch.Tensor, x: Expr) -> Expr:
    """``W x`` for a shared weight matrix ``W (out, in)`` and a vector ``x (in,)``."""
    return affine(None, W, x)


def add(a: Expr, b: Expr) -> Expr:
    """Elementwise ``a + b`` (equal shapes)."""
    return _graph_of((a, b), "add").record_binary("add", a, b)


def sub(a: Expr, b: Expr) -> Expr:
    """Elementwise ``a - b`` (equal shapes)."""
    return _graph_of((a, b), "sub").record_binary("sub", a, b)


def mul(a: Expr, b: Expr) -> Expr:
    """Elementwise ``a * b`` (equal shapes)."""
    return _graph_of((a, b), "mul").record_binary("mul", a, b)


def scale(x: Expr, c: float) -> Expr:
    """``c * x`` for a Python constant ``c`` (part of the signature)."""
    return _graph_of((x,), "scale").record_unary("scale", x, (float(c),))


def neg(x: Expr) -> Expr:
    """``-x``."""
    return _graph_of((x,), "neg").record_unary("neg", x)


def tanh(x: Expr) -> Expr:
    """Elementwise ``tanh``."""
    return _graph_of((x,), "tanh").record_unary("tanh", x)


def sigmoid(x: Expr) -> Expr:
    """Elementwise logistic sigmoid."""
    return _graph_of((x,), "sigmoid").record_unary("sigmoid", x)


def relu(x: Expr) -> Expr:
    """Elementwise ``max(x, 0)``."""
    return _graph_of((x,), "relu").record_unary("relu", x)


def concat(xs: Sequence[Expr]) -> Expr:
    """Concatenate vectors ``(n_1,) … (n_k,)`` → ``(Σ n_i,)``."""
    xs = tuple(xs)
    return _graph_of(xs, "concat").record("concat", xs)


def slice_(x: Expr, start: int, stop: int) -> Expr:
    """``x[start:stop]`` of a vector (the bounds are part of the signature)."""
    return _graph_of((x,), "slice").record_unary("slice", x, (int(start), int(stop)))


def pick(x: Expr, index: int) -> Expr:
    """Element ``index`` of a vector → scalar ``()``; the index is per-node data (batches)."""
    _graph_of((x,), "pick")  # operand check
    return x._pick(index)


def esum(xs: Sequence[Expr]) -> Expr:
    """Elementwise sum of equally shaped expressions."""
    xs = tuple(xs)
    return _graph_of(xs, "esum").record("esum", xs)


def sum_elems(x: Expr) -> Expr:
    """Sum of all elements → scalar ``()``."""
    return _graph_of((x,), "sum_elems").record_unary("sum_elems", x)


def softmax(x: Expr) -> Expr:
    """Softmax of a vector."""
    return _graph_of((x,), "softmax").record_unary("softmax", x)


def log_softmax(x: Expr) -> Expr:
    """Log-softmax of a vector."""
    return _graph_of((x,), "log_softmax").record_unary("log_softmax", x)


def cross_entropy(logits: Expr, label: int) -> Expr:
    """``-log softmax(logits)[label]`` → scalar (DyNet's ``pickneglogsoftmax``)."""
    label = int(label)
    if logits.__class__ is Expr:
        g = logits.graph
        sid = g._sig_ids.get(("cross_entropy", (), -1, logits.tid))
        if sid is not None and 0 <= label < g._types[logits.tid][0][0]:
            return g._push(sid, logits.node, -1, label)
    if len(logits.shape) == 1 and not 0 <= label < logits.shape[0]:
        raise ShapeMismatch(f"cross_entropy: label {label} is out of range for logits of shape "
                            f"{logits.shape} (created at {_creation_site()})")
    return _graph_of((logits,), "cross_entropy").record("cross_entropy", (logits,), data=label)
