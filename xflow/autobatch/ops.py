"""The operation table of the lazy graph: per-example shape rules and one batched torch kernel per op.

Every op is described by an :class:`OpSpec`:

* ``infer(shapes, params, attrs) -> shape`` — the *per-example* output shape from the operand
  shapes (no batch dimension), the shared parameter tensors and the static attributes. It raises
  :class:`OpShapeError` with a short reason when the operands do not fit; the graph turns that
  into a :class:`xflow.errors.ShapeMismatch` naming the op, the shapes and the creation site.
* ``kernel(params, args, attrs, data) -> Tensor`` — the *batched* computation: each ``args[j]``
  holds operand ``j`` of all ``B`` nodes of a group stacked along a new leading dimension
  (``(B, *shape_j)``); ``params`` are the shared parameter tensors (identical for the whole group,
  because parameter identity is part of the signature); ``data`` is the list of per-node
  non-signature values (word ids, labels, pick indices) or ``None``. It returns ``(B, *out)``.

Ops whose per-node ``data`` varies (``lookup``, ``pick``, ``cross_entropy``) still batch: the data
becomes an index tensor. Adding an op = one ``OpSpec`` in :data:`OPS` plus a recording function in
:mod:`xflow.autobatch.functional`.

The fused cells (``lstm_gates``, ``treelstm_gates``, ``treelstm_leaf``) follow PyTorch's gate
layout so that the hand-batched ``nn.LSTM`` baseline computes exactly the same function:

.. math::
    i, f, g, o = \\sigma(p_i), \\sigma(p_f), \\tanh(p_g), \\sigma(p_o), \\qquad
    c' = f \\odot c + i \\odot g, \\qquad h' = o \\odot \\tanh(c')

and the output is the concatenation ``[h'; c']`` (shape ``(2H,)``).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "OpSpec", "OpShapeError", "OPS", "register_op", "Shape",
    "lstm_gates_torch", "treelstm_gates_torch", "treelstm_leaf_torch",
]

Shape = tuple[int, ...]


class OpShapeError(Exception):
    """Raised by an ``infer`` rule with a short reason; converted to ``ShapeMismatch`` by the graph."""


@dataclass(frozen=True)
class OpSpec:
    """One operation: its shape rule and its batched kernel (see module docstring)."""

    name: str
    infer: Callable[[tuple[Shape, ...], tuple[torch.Tensor, ...], tuple], Shape]
    kernel: Callable[[Sequence[torch.Tensor], Sequence[torch.Tensor], tuple, Any], torch.Tensor]
    nary: bool = False  # variable number of operands (concat, esum, affine)
    #: all operands share one shape and are gathered in ONE call as ``(B, n_operands, *shape)``
    #: (passed as ``args[0]``) instead of one gather per operand position — for wide n-ary ops
    #: such as the per-example loss sum, this replaces ``n`` gathers (and their backward) by one.
    flat: bool = False


OPS: dict[str, OpSpec] = {}


def register_op(spec: OpSpec) -> OpSpec:
    """Add an op to :data:`OPS` (name must be new)."""
    if spec.name in OPS:
        raise ValueError(f"op {spec.name!r} already registered")
    OPS[spec.name] = spec
    return spec


# ---------------------------------------------------------------- shape helpers
def _vec(s: Shape, what: str) -> int:
    if len(s) != 1:
        raise OpShapeError(f"{what} must be a vector, got shape {s}")
    return s[0]


def _same(shapes: tuple[Shape, ...]) -> Shape:
    if not shapes:
        raise OpShapeError("needs at least one operand")
    first = shapes[0]
    for s in shapes[1:]:
        if s != first:
            raise OpShapeError(f"operands must have equal shapes, got {shapes}")
    return first


# ---------------------------------------------------------------- leaves (never executed)
def _leaf_infer(shapes, params, attrs):  # pragma: no cover - leaves bypass infer
    raise OpShapeError("leaf")


def _leaf_kernel(params, args, attrs, data):  # pragma: no cover
    raise RuntimeError("leaf nodes are never executed")


register_op(OpSpec("input", _leaf_infer, _leaf_kernel))
register_op(OpSpec("param", _leaf_infer, _leaf_kernel))


# ---------------------------------------------------------------- affine: b + sum_k W_k x_k
def _affine_infer(shapes, params, attrs):
    (nb,) = attrs
    weights = params[nb:]
    if len(weights) != len(shapes) or not shapes:
        raise OpShapeError(f"needs one weight per operand, got {len(weights)} weights for {len(shapes)} operands")
    out = None
    for k, (W, s) in enumerate(zip(weights, shapes)):
        n = _vec(s, f"operand {k}")
        if W.dim() != 2:
            raise OpShapeError(f"weight {k} must be a matrix, got shape {tuple(W.shape)}")
        if W.shape[1] != n:
            raise OpShapeError(f"weight {k} of shape {tuple(W.shape)} cannot multiply an operand of shape {s}")
        if out is None:
            out = int(W.shape[0])
        elif W.shape[0] != out:
            raise OpShapeError(f"weights disagree on the output size: {[tuple(w.shape) for w in weights]}")
    for b in params[:nb]:
        if tuple(b.shape) != (out,):
            raise OpShapeError(f"bias of shape {tuple(b.shape)} does not match output size {out}")
    return (out,)


def _affine_kernel(params, args, attrs, data):
    (nb,) = attrs
    weights = params[nb:]
    if nb:
        bias = params[0]
        for b in params[1:nb]:
            bias = bias + b
        y = torch.addmm(bias, args[0], weights[0].t())
    else:
        y = args[0] @ weights[0].t()
    for W, X in zip(weights[1:], args[1:]):
        y = torch.addmm(y, X, W.t())
    return y


register_op(OpSpec("affine", _affine_infer, _affine_kernel, nary=True))


# ---------------------------------------------------------------- elementwise
def _binary_infer(shapes, params, attrs):
    if len(shapes) != 2:
        raise OpShapeError(f"needs 2 operands, got {len(shapes)}")
    return _same(shapes)


register_op(OpSpec("add", _binary_infer, lambda p, a, at, d: a[0] + a[1]))
register_op(OpSpec("sub", _binary_infer, lambda p, a, at, d: a[0] - a[1]))
register_op(OpSpec("mul", _binary_infer, lambda p, a, at, d: a[0] * a[1]))


def _unary_infer(shapes, params, attrs):
    if len(shapes) != 1:
        raise OpShapeError(f"needs 1 operand, got {len(shapes)}")
    return shapes[0]


register_op(OpSpec("tanh", _unary_infer, lambda p, a, at, d: torch.tanh(a[0])))
register_op(OpSpec("sigmoid", _unary_infer, lambda p, a, at, d: torch.sigmoid(a[0])))
register_op(OpSpec("relu", _unary_infer, lambda p, a, at, d: torch.relu(a[0])))
register_op(OpSpec("neg", _unary_infer, lambda p, a, at, d: -a[0]))
register_op(OpSpec("scale", _unary_infer, lambda p, a, at, d: a[0] * at[0]))


def _esum_infer(shapes, params, attrs):
    return _same(shapes)


def _esum_kernel(params, args, attrs, data):
    return args[0].sum(1)  # flat op: args[0] is (B, n, *shape)


register_op(OpSpec("esum", _esum_infer, _esum_kernel, nary=True, flat=True))


# ---------------------------------------------------------------- structure: concat, slice, pick
def _concat_infer(shapes, params, attrs):
    if not shapes:
        raise OpShapeError("needs at least one operand")
    return (sum(_vec(s, f"operand {k}") for k, s in enumerate(shapes)),)


register_op(OpSpec("concat", _concat_infer, lambda p, a, at, d: torch.cat(list(a), 1), nary=True))


def _slice_infer(shapes, params, attrs):
    (s,) = shapes
    n = _vec(s, "operand")
    start, stop = attrs
    if not (0 <= start < stop <= n):
        raise OpShapeError(f"slice [{start}:{stop}] is out of range for shape {s}")
    return (stop - start,)


register_op(OpSpec("slice", _slice_infer, lambda p, a, at, d: a[0][:, at[0]:at[1]]))


def _pick_infer(shapes, params, attrs):
    if len(shapes) != 1:
        raise OpShapeError(f"needs 1 operand, got {len(shapes)}")
    _vec(shapes[0], "operand")
    return ()


def _index_tensor(data, device) -> torch.Tensor:
    return torch.as_tensor(data, dtype=torch.long, device=device)


def _pick_kernel(params, args, attrs, data):
    X = args[0]
    idx = _index_tensor(data, X.device)
    return X[torch.arange(X.shape[0], device=X.device), idx]


register_op(OpSpec("pick", _pick_infer, _pick_kernel))


def _lookup_infer(shapes, params, attrs):
    (E,) = params
    if E.dim() != 2:
        raise OpShapeError(f"embedding table must be a matrix, got shape {tuple(E.shape)}")
    if shapes:
        raise OpShapeError("takes no expression operands")
    return (int(E.shape[1]),)


def _lookup_kernel(params, args, attrs, data):
    E = params[0]
    return F.embedding(_index_tensor(data, E.device), E, sparse=bool(attrs and attrs[0]))


register_op(OpSpec("lookup", _lookup_infer, _lookup_kernel))


# ---------------------------------------------------------------- reductions and losses
def _scalar_infer(shapes, params, attrs):
    _unary_infer(shapes, params, attrs)
    return ()


register_op(OpSpec("sum_elems", _scalar_infer, lambda p, a, at, d: a[0].reshape(a[0].shape[0], -1).sum(1)))


def _vec_infer(shapes, params, attrs):
    (s,) = shapes
    _vec(s, "operand")
    return s


register_op(OpSpec("softmax", _vec_infer, lambda p, a, at, d: torch.softmax(a[0], 1)))
register_op(OpSpec("log_softmax", _vec_infer, lambda p, a, at, d: torch.log_softmax(a[0], 1)))


def _ce_kernel(params, args, attrs, data):
    X = args[0]
    return F.cross_entropy(X, _index_tensor(data, X.device), reduction="none")


register_op(OpSpec("cross_entropy", _pick_infer, _ce_kernel))


# ---------------------------------------------------------------- fused recurrent cells
def _lstm_gates_infer(shapes, params, attrs):
    if len(shapes) != 2:
        raise OpShapeError(f"needs (preactivation, cell) operands, got {len(shapes)}")
    p = _vec(shapes[0], "preactivation")
    h = _vec(shapes[1], "cell state")
    if p != 4 * h:
        raise OpShapeError(f"preactivation of shape {shapes[0]} must be 4x the cell state {shapes[1]}")
    return (2 * h,)


def lstm_gates_torch(pre: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Batched LSTM gate math on ``pre (B, 4H)`` and ``c (B, H)``; returns ``[h'; c'] (B, 2H)``."""
    i, f, g, o = pre.chunk(4, -1)
    c2 = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h2 = torch.sigmoid(o) * torch.tanh(c2)
    return torch.cat([h2, c2], -1)


register_op(OpSpec("lstm_gates", _lstm_gates_infer, lambda p, a, at, d: lstm_gates_torch(a[0], a[1])))


def _tree_gates_infer(shapes, params, attrs):
    if len(shapes) != 3:
        raise OpShapeError(f"needs (preactivation, c_left, c_right) operands, got {len(shapes)}")
    p = _vec(shapes[0], "preactivation")
    if shapes[1] != shapes[2]:
        raise OpShapeError(f"child cell states differ: {shapes[1]} vs {shapes[2]}")
    h = _vec(shapes[1], "child cell state")
    if p != 5 * h:
        raise OpShapeError(f"preactivation of shape {shapes[0]} must be 5x the cell state {shapes[1]}")
    return (2 * h,)


def treelstm_gates_torch(pre: torch.Tensor, cl: torch.Tensor, cr: torch.Tensor) -> torch.Tensor:
    """Binary Tree-LSTM (Tai et al. 2015, N-ary) gates: ``pre = [i, f_l, f_r, o, u]`` → ``[h; c]``.

    ``c = σ(i)⊙tanh(u) + σ(f_l)⊙c_l + σ(f_r)⊙c_r``, ``h = σ(o)⊙tanh(c)``.
    """
    i, fl, fr, o, u = pre.chunk(5, -1)
    c = torch.sigmoid(i) * torch.tanh(u) + torch.sigmoid(fl) * cl + torch.sigmoid(fr) * cr
    h = torch.sigmoid(o) * torch.tanh(c)
    return torch.cat([h, c], -1)


register_op(OpSpec("treelstm_gates", _tree_gates_infer,
                   lambda p, a, at, d: treelstm_gates_torch(a[0], a[1], a[2])))


def _tree_leaf_infer(shapes, params, attrs):
    if len(shapes) != 1:
        raise OpShapeError(f"needs 1 operand, got {len(shapes)}")
    p = _vec(shapes[0], "preactivation")
    if p % 3:
        raise OpShapeError(f"preactivation of shape {shapes[0]} must be 3H = [i, o, u]")
    return (2 * (p // 3),)


def treelstm_leaf_torch(pre: torch.Tensor) -> torch.Tensor:
    """Tree-LSTM leaf: ``pre = [i, o, u]``, ``c = σ(i)⊙tanh(u)``, ``h = σ(o)⊙tanh(c)`` → ``[h; c]``."""
    i, o, u = pre.chunk(3, -1)
    c = torch.sigmoid(i) * torch.tanh(u)
    h = torch.sigmoid(o) * torch.tanh(c)
    return torch.cat([h, c], -1)


register_op(OpSpec("treelstm_leaf", _tree_leaf_infer, lambda p, a, at, d: treelstm_leaf_torch(a[0])))
