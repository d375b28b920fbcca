"""The operation table of the lazy graph: per-example shape rules, one batched kernel and its backward per op.

Every op is described by an :class:`OpSpec`:

* ``infer(shapes, params, attrs) -> shape`` — the *per-example* output shape from the operand
  shapes (no batch dimension), the shared parameter tensors and the static attributes. It raises
  :class:`OpShapeError` with a short reason when the operands do not fit; the graph turns that
  into a :class:`xflow.errors.ShapeMismatch` naming the op, the shapes and the creation site.
  The output dtype is the promotion of the operand and parameter dtypes (``promote=False``: the
  first parameter's dtype, e.g. an embedding table's); operands and parameters must share a device.
* ``kernel(params, args, attrs, data) -> Tensor`` — the *batched* computation: each ``args[j]``
  holds operand ``j`` of all ``B`` nodes of a group stacked along a new leading dimension
  (``(B, *shape_j)``); ``params`` are the shared parameter tensors (identical for the whole group,
  because parameter identity is part of the signature); ``data`` is a ``LongTensor (B,)`` of the
  per-node indices (word ids, labels, pick indices) for ``index_data`` ops, else ``None``.
* ``backward(params, args, attrs, data, Y, saved, gY, need, pg) -> [gX_j or None]`` (optional) —
  the vector-Jacobian product of the batched kernel: gradients of the operands that ``need`` them,
  parameter gradients accumulated through ``pg`` (:class:`ParamGrads`: ``pg.addmm(k, a, b)`` adds
  ``a @ b`` to parameter ``k``'s gradient *in place*; ``pg.outer(k, X)`` asks for ``gY^T X`` and
  ``pg.rowsum(k)`` for ``gY.sum(0)``, which the executor defers and computes once for all groups of
  the signature — one big matrix product instead of one rank-``B`` update per group). Ops without a
  ``backward`` are differentiated by torch autograd on the group (a small local graph per group).
* ``write(params, args, attrs, data, out) -> saved`` (optional) — the kernel writing straight
  into ``out``, the group's rows of its signature's arena (no copy); it returns the intermediates
  the backward wants as ``saved`` (the LSTM gates' activations) or ``None``. Ops without it run
  ``kernel`` and the result is copied into the arena.

Scheduling flags, after DyNet (``dynet/sig.h``, ``exec.cc``): ``batchable=False`` marks an op
DyNet would give signature 0 (each node runs alone, and ready unbatchable nodes run before any
batch); ``complex=True`` marks the types DyNet lists after ``nt::COMPLEX`` (affine, matmul): on a
tie of average depth the agenda prefers a simple op and defers these.

Ops whose per-node data varies (``lookup``, ``pick``, ``cross_entropy``) still batch: the data
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
from typing import Any, Protocol

import torch
import torch.nn.functional as F

__all__ = [
    "OpSpec", "OpShapeError", "OPS", "register_op", "Shape", "ParamGrads", "set_segment_memo",
    "lstm_gates_torch", "treelstm_gates_torch", "treelstm_leaf_torch",
]

Shape = tuple[int, ...]


class OpShapeError(Exception):
    """Raised by an ``infer`` rule with a short reason; converted to ``ShapeMismatch`` by the graph."""


class ParamGrads(Protocol):
    """Gradient accumulator for the parameters of one group (``k`` = index into ``params``)."""

    def need(self, k: int) -> bool:
        """Whether parameter ``k`` needs a gradient."""

    def add(self, k: int, g: torch.Tensor) -> None:
        """``grad_k += g`` (``g`` dense or sparse)."""

    def addmm(self, k: int, a: torch.Tensor, b: torch.Tensor) -> None:
        """``grad_k += a @ b`` in place."""

    def rows(self, k: int, index: torch.Tensor, values: torch.Tensor, sparse: bool) -> None:
        """``grad_k[index] += values`` (as a sparse gradient when ``sparse``)."""

    def outer(self, k: int, X: torch.Tensor) -> None:
        """``grad_k += gY^T X`` for this group's output gradient ``gY`` — deferred: the executor sums
        the products of every group sharing the parameter as **one** matrix product over all their rows."""

    def rowsum(self, k: int) -> None:
        """``grad_k += gY.sum(0)`` for this group's output gradient — deferred like :meth:`outer`."""


@dataclass(frozen=True)
class OpSpec:
    """One operation: its shape rule, batched kernel, optional backward and scheduling flags."""

    name: str
    infer: Callable[[tuple[Shape, ...], tuple[torch.Tensor, ...], tuple], Shape]
    kernel: Callable[[Sequence[torch.Tensor], Sequence[torch.Tensor], tuple, Any], torch.Tensor]
    nary: bool = False  # variable number of operands (concat, esum, affine)
    #: all operands share one shape and are gathered in ONE call as ``(B, n_operands, *shape)``
    #: (passed as ``args[0]``) instead of one gather per operand position — for wide n-ary ops
    #: such as the per-example loss sum, this replaces ``n`` gathers (and their backward) by one.
    flat: bool = False
    batchable: bool = True
    complex: bool = False
    index_data: bool = False
    promote: bool = True
    backward: Callable[..., list[torch.Tensor | None]] | None = None
    write: Callable[..., Any] | None = None
    #: ``(Y, gY) -> None``: turns the output gradient of a group into the gradient of the op's
    #: pre-activation **in place** before :attr:`backward` runs (fused activations). The executor
    #: hands it rows of a gradient buffer it owns, so the deferred weight gradients, which read
    #: those rows later, see the pre-activation gradient too.
    grad_in_place: Callable[[torch.Tensor, torch.Tensor], None] | None = None
    #: ``(params, attrs, j, S) -> P``: the op's term ``j`` (bias included) for *every* row of a source
    #: ``S`` at once, ``P = b + S W_j^T`` — lets the executor hoist an input projection that many
    #: groups read from one complete source (an LSTM's ``W_ih x_t`` over all time steps) into one
    #: large matrix product, as ``nn.LSTM`` does on CPU. ``None``: the op cannot be hoisted.
    project: Callable[..., torch.Tensor] | None = None
    #: ``(params, args, attrs, j, out) -> None``: finish a group whose ``out`` already holds its rows
    #: of :attr:`project`'s ``P``: add every other term (``args[j]`` is not read) and the activation.
    write_rest: Callable[..., None] | None = None


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


def _void(_: Any) -> None:
    """Discard a kernel's return value (``write`` functions return only what the backward keeps)."""
    return None


def _bcast(g: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``g (B,)`` reshaped to broadcast against ``like (B, ...)``."""
    return g.reshape(g.shape[0], *([1] * (like.dim() - 1)))


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


#: Per-segment memo of derived parameter tensors (summed biases), set by the
#: executor around a segment's forward and backward: parameters do not change inside one segment.
_memo: dict | None = None


def set_segment_memo(memo: dict | None) -> None:
    """Install (``dict``) or remove (``None``) the memo the affine kernels use for derived parameters."""
    global _memo
    _memo = memo


def _derived(kind: str, tensors: Sequence[torch.Tensor], make: Callable[[], torch.Tensor]) -> torch.Tensor:
    memo = _memo
    if memo is None:
        return make()
    key = (kind, *map(id, tensors))
    hit = memo.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], tensors)):
        return hit[1]
    v = make()
    memo[key] = (tuple(tensors), v)  # keeps the tensors alive: their ids cannot be reused meanwhile
    return v


def _affine_bias(params: Sequence[torch.Tensor], nb: int) -> torch.Tensor:
    if nb == 1:
        return params[0]
    def total() -> torch.Tensor:
        bias = params[0]
        for b in params[1:nb]:
            bias = bias + b
        return bias

    return _derived("bias", params[:nb], total)


def _affine_kernel(params, args, attrs, data):
    (nb,) = attrs
    weights = params[nb:]
    if nb:
        y = torch.addmm(_affine_bias(params, nb), args[0], weights[0].t())
    else:
        y = torch.mm(args[0], weights[0].t())
    for W, X in zip(weights[1:], args[1:]):
        y.addmm_(X, W.t())
    return y


def _affine_write(params, args, attrs, data, out):
    (nb,) = attrs
    weights = params[nb:]
    if nb:
        torch.addmm(_affine_bias(params, nb), args[0], weights[0].t(), out=out)
    else:
        torch.mm(args[0], weights[0].t(), out=out)
    for W, X in zip(weights[1:], args[1:]):
        out.addmm_(X, W.t())


def _affine_project(params, attrs, j, S):
    (nb,) = attrs
    W = params[nb + j]
    return torch.addmm(_affine_bias(params, nb), S, W.t()) if nb else torch.mm(S, W.t())


def _affine_rest(params, args, attrs, j, out):
    (nb,) = attrs
    for k, (W, X) in enumerate(zip(params[nb:], args)):
        if k != j:
            out.addmm_(X, W.t())


def _affine_backward(params, args, attrs, data, Y, saved, gY, need, pg):
    (nb,) = attrs
    for k in range(nb):
        if pg.need(k):
            pg.rowsum(k)  # db += sum of dY rows (deferred: one sum over every group of the signature)
    out: list[torch.Tensor | None] = []
    for j, X in enumerate(args):
        W = params[nb + j]
        if pg.need(nb + j):
            pg.outer(nb + j, X)  # dW_j += dY^T X_j (deferred: one GEMM over every group of the signature)
        out.append(torch.mm(gY, W) if need[j] else None)
    return out


register_op(OpSpec("affine", _affine_infer, _affine_kernel, nary=True, complex=True, backward=_affine_backward,
                   write=_affine_write, project=_affine_project, write_rest=_affine_rest))


# ---------------------------------------------------------------- affine_tanh: tanh(b + sum_k W_k x_k), fused
def _affine_tanh_kernel(params, args, attrs, data):
    return torch.tanh(_affine_kernel(params, args, attrs, data))


def _affine_tanh_write(params, args, attrs, data, out):
    _affine_write(params, args, attrs, data, out)
    out.tanh_()


def _affine_tanh_rest(params, args, attrs, j, out):
    _affine_rest(params, args, attrs, j, out)
    out.tanh_()


def _tanh_grad_in_place(Y: torch.Tensor, gY: torch.Tensor) -> None:
    """``gY <- gY * (1 - Y²)``: the gradient of the affine pre-activation of ``Y = tanh(z)``."""
    gY.mul_(_one_minus_sq(Y))


register_op(OpSpec("affine_tanh", _affine_infer, _affine_tanh_kernel, nary=True, complex=True,
                   backward=_affine_backward, write=_affine_tanh_write, grad_in_place=_tanh_grad_in_place,
                   project=_affine_project, write_rest=_affine_tanh_rest))


# ---------------------------------------------------------------- elementwise
def _binary_infer(shapes, params, attrs):
    if len(shapes) != 2:
        raise OpShapeError(f"needs 2 operands, got {len(shapes)}")
    return _same(shapes)


def _add_bw(p, a, at, d, Y, s, gY, need, pg):
    return [gY if need[0] else None, gY if need[1] else None]


def _sub_bw(p, a, at, d, Y, s, gY, need, pg):
    return [gY if need[0] else None, -gY if need[1] else None]


def _mul_bw(p, a, at, d, Y, s, gY, need, pg):
    return [gY * a[1] if need[0] else None, gY * a[0] if need[1] else None]


register_op(OpSpec("add", _binary_infer, lambda p, a, at, d: a[0] + a[1], backward=_add_bw,
                   write=lambda p, a, at, d, out: _void(torch.add(a[0], a[1], out=out))))
register_op(OpSpec("sub", _binary_infer, lambda p, a, at, d: a[0] - a[1], backward=_sub_bw,
                   write=lambda p, a, at, d, out: _void(torch.sub(a[0], a[1], out=out))))
register_op(OpSpec("mul", _binary_infer, lambda p, a, at, d: a[0] * a[1], backward=_mul_bw,
                   write=lambda p, a, at, d, out: _void(torch.mul(a[0], a[1], out=out))))


def _unary_infer(shapes, params, attrs):
    if len(shapes) != 1:
        raise OpShapeError(f"needs 1 operand, got {len(shapes)}")
    return shapes[0]


def _one_minus_sq(y: torch.Tensor) -> torch.Tensor:
    """``1 - y²`` without a Python-scalar ``rsub`` (which wraps the 1 in a tensor on every call)."""
    return torch.mul(y, y).neg_().add_(1.0)


def _tanh_bw(p, a, at, d, Y, s, gY, need, pg):
    return [gY * _one_minus_sq(Y)]


def _sigmoid_bw(p, a, at, d, Y, s, gY, need, pg):
    return [torch.mul(Y, Y).neg_().add_(Y).mul_(gY)]


register_op(OpSpec("tanh", _unary_infer, lambda p, a, at, d: torch.tanh(a[0]), backward=_tanh_bw,
                   write=lambda p, a, at, d, out: _void(torch.tanh(a[0], out=out))))
register_op(OpSpec("sigmoid", _unary_infer, lambda p, a, at, d: torch.sigmoid(a[0]), backward=_sigmoid_bw,
                   write=lambda p, a, at, d, out: _void(torch.sigmoid(a[0], out=out))))
register_op(OpSpec("relu", _unary_infer, lambda p, a, at, d: torch.relu(a[0])))  # autograd fallback
register_op(OpSpec("neg", _unary_infer, lambda p, a, at, d: -a[0],
                   backward=lambda p, a, at, d, Y, s, gY, need, pg: [-gY],
                   write=lambda p, a, at, d, out: _void(torch.neg(a[0], out=out))))
register_op(OpSpec("scale", _unary_infer, lambda p, a, at, d: a[0] * at[0],
                   backward=lambda p, a, at, d, Y, s, gY, need, pg: [gY * at[0]],
                   write=lambda p, a, at, d, out: _void(torch.mul(a[0], at[0], out=out))))


def _esum_infer(shapes, params, attrs):
    return _same(shapes)


def _esum_kernel(params, args, attrs, data):
    return args[0].sum(1)  # flat op: args[0] is (B, n, *shape)


def _esum_bw(p, a, at, d, Y, s, gY, need, pg):
    return [gY.unsqueeze(1).expand_as(a[0])]


register_op(OpSpec("esum", _esum_infer, _esum_kernel, nary=True, flat=True, backward=_esum_bw,
                   write=lambda p, a, at, d, out: _void(torch.sum(a[0], 1, out=out))))


# ---------------------------------------------------------------- structure: concat, slice, pick
def _concat_infer(shapes, params, attrs):
    if not shapes:
        raise OpShapeError("needs at least one operand")
    return (sum(_vec(s, f"operand {k}") for k, s in enumerate(shapes)),)


def _concat_bw(p, a, at, d, Y, s, gY, need, pg):
    parts = torch.split(gY, [x.shape[1] for x in a], 1)
    return [g if n else None for g, n in zip(parts, need)]


register_op(OpSpec("concat", _concat_infer, lambda p, a, at, d: torch.cat(list(a), 1), nary=True, backward=_concat_bw,
                   write=lambda p, a, at, d, out: _void(torch.cat(list(a), 1, out=out))))


def _slice_infer(shapes, params, attrs):
    (s,) = shapes
    n = _vec(s, "operand")
    start, stop = attrs
    if not (0 <= start < stop <= n):
        raise OpShapeError(f"slice [{start}:{stop}] is out of range for shape {s}")
    return (stop - start,)


register_op(OpSpec("slice", _slice_infer, lambda p, a, at, d: a[0][:, at[0]:at[1]].clone()))


def _pick_infer(shapes, params, attrs):
    if len(shapes) != 1:
        raise OpShapeError(f"needs 1 operand, got {len(shapes)}")
    _vec(shapes[0], "operand")
    return ()


def _rows(X: torch.Tensor) -> torch.Tensor:
    return torch.arange(X.shape[0], device=X.device)


def _pick_kernel(params, args, attrs, data):
    X = args[0]
    return X[_rows(X), data]


def _pick_bw(p, a, at, d, Y, s, gY, need, pg):
    X = a[0]
    gX = torch.zeros_like(X)
    gX[_rows(X), d] = gY
    return [gX]


register_op(OpSpec("pick", _pick_infer, _pick_kernel, index_data=True, backward=_pick_bw))


def _lookup_infer(shapes, params, attrs):
    (E,) = params
    if E.dim() != 2:
        raise OpShapeError(f"embedding table must be a matrix, got shape {tuple(E.shape)}")
    if shapes:
        raise OpShapeError("takes no expression operands")
    return (int(E.shape[1]),)


def _lookup_kernel(params, args, attrs, data):
    return F.embedding(data, params[0])


def _lookup_bw(p, a, at, d, Y, s, gY, need, pg):
    if pg.need(0):
        pg.rows(0, d, gY, bool(at and at[0]))
    return []


register_op(OpSpec("lookup", _lookup_infer, _lookup_kernel, index_data=True, promote=False, backward=_lookup_bw,
                   write=lambda p, a, at, d, out: _void(torch.index_select(p[0], 0, d, out=out))))


# ---------------------------------------------------------------- reductions and losses
def _scalar_infer(shapes, params, attrs):
    _unary_infer(shapes, params, attrs)
    return ()


def _sum_elems_bw(p, a, at, d, Y, s, gY, need, pg):
    return [_bcast(gY, a[0]).expand_as(a[0])]


register_op(OpSpec("sum_elems", _scalar_infer, lambda p, a, at, d: a[0].reshape(a[0].shape[0], -1).sum(1),
                   backward=_sum_elems_bw))


def _vec_infer(shapes, params, attrs):
    if len(shapes) != 1:
        raise OpShapeError(f"needs 1 operand, got {len(shapes)}")
    _vec(shapes[0], "operand")
    return shapes[0]


register_op(OpSpec("softmax", _vec_infer, lambda p, a, at, d: torch.softmax(a[0], 1)))  # autograd fallback
register_op(OpSpec("log_softmax", _vec_infer, lambda p, a, at, d: torch.log_softmax(a[0], 1)))


def _ce_kernel(params, args, attrs, data):
    return F.cross_entropy(args[0], data, reduction="none")


def _ce_bw(p, a, at, d, Y, s, gY, need, pg):
    X = a[0]
    gX = torch.softmax(X, 1)
    gX[_rows(X), d] -= 1
    return [gX.mul_(gY.unsqueeze(1))]


register_op(OpSpec("cross_entropy", _pick_infer, _ce_kernel, index_data=True, backward=_ce_bw))


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


def _lstm_write(params, args, attrs, data, out):
    pre, c = args
    H = c.shape[1]
    s = torch.sigmoid(pre)  # i, f, (unused), o
    g = torch.tanh(pre[:, 2 * H:3 * H])
    c2 = out[:, H:]
    torch.mul(s[:, H:2 * H], c, out=c2)
    c2.addcmul_(s[:, :H], g)
    tc = torch.tanh(c2)
    torch.mul(s[:, 3 * H:], tc, out=out[:, :H])
    return s, g, tc


def _lstm_bw(p, a, at, d, Y, saved, gY, need, pg):
    pre, c = a
    s, g, tc = saved
    H = c.shape[1]
    i, f, o = s[:, :H], s[:, H:2 * H], s[:, 3 * H:]
    gh, gc2 = gY[:, :H], gY[:, H:]
    gct = (gh * o).mul_(_one_minus_sq(tc)).add_(gc2)  # dL/dc' through h' and directly
    gpre = torch.empty_like(pre)
    torch.mul(gct, g, out=gpre[:, :H])          # d i
    torch.mul(gct, c, out=gpre[:, H:2 * H])     # d f
    torch.mul(gct, i, out=gpre[:, 2 * H:3 * H])  # d g
    torch.mul(gh, tc, out=gpre[:, 3 * H:])      # d o
    ds = torch.mul(s, s).neg_().add_(s)
    gpre[:, :2 * H].mul_(ds[:, :2 * H])
    gpre[:, 3 * H:].mul_(ds[:, 3 * H:])
    gpre[:, 2 * H:3 * H].mul_(_one_minus_sq(g))
    return [gpre if need[0] else None, gct * f if need[1] else None]


register_op(OpSpec("lstm_gates", _lstm_gates_infer, lambda p, a, at, d: lstm_gates_torch(a[0], a[1]),
                   write=_lstm_write, backward=_lstm_bw))


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


def _tree_write(params, args, attrs, data, out):
    pre, cl, cr = args
    H = cl.shape[1]
    s = torch.sigmoid(pre[:, :4 * H])  # i, fl, fr, o
    u = torch.tanh(pre[:, 4 * H:])
    c = out[:, H:]
    torch.mul(s[:, :H], u, out=c)
    c.addcmul_(s[:, H:2 * H], cl).addcmul_(s[:, 2 * H:3 * H], cr)
    tc = torch.tanh(c)
    torch.mul(s[:, 3 * H:], tc, out=out[:, :H])
    return s, u, tc


def _tree_bw(p, a, at, d, Y, saved, gY, need, pg):
    pre, cl, cr = a
    s, u, tc = saved
    H = cl.shape[1]
    gh, gc = gY[:, :H], gY[:, H:]
    o = s[:, 3 * H:]
    gct = (gh * o).mul_(_one_minus_sq(tc)).add_(gc)
    gpre = torch.empty_like(pre)
    torch.mul(gct, u, out=gpre[:, :H])
    torch.mul(gct, cl, out=gpre[:, H:2 * H])
    torch.mul(gct, cr, out=gpre[:, 2 * H:3 * H])
    torch.mul(gh, tc, out=gpre[:, 3 * H:4 * H])
    gpre[:, :4 * H].mul_(torch.mul(s, s).neg_().add_(s))
    torch.mul(gct, s[:, :H], out=gpre[:, 4 * H:]).mul_(_one_minus_sq(u))
    return [gpre if need[0] else None, gct * s[:, H:2 * H] if need[1] else None,
            gct * s[:, 2 * H:3 * H] if need[2] else None]


register_op(OpSpec("treelstm_gates", _tree_gates_infer, lambda p, a, at, d: treelstm_gates_torch(a[0], a[1], a[2]),
                   write=_tree_write, backward=_tree_bw))


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


def _leaf_write(params, args, attrs, data, out):
    (pre,) = args
    H = pre.shape[1] // 3
    s = torch.sigmoid(pre[:, :2 * H])  # i, o
    u = torch.tanh(pre[:, 2 * H:])
    c = out[:, H:]
    torch.mul(s[:, :H], u, out=c)
    tc = torch.tanh(c)
    torch.mul(s[:, H:], tc, out=out[:, :H])
    return s, u, tc


def _leaf_bw(p, a, at, d, Y, saved, gY, need, pg):
    (pre,) = a
    s, u, tc = saved
    H = u.shape[1]
    gh, gc = gY[:, :H], gY[:, H:]
    gct = (gh * s[:, H:]).mul_(_one_minus_sq(tc)).add_(gc)
    gpre = torch.empty_like(pre)
    torch.mul(gct, u, out=gpre[:, :H])
    torch.mul(gh, tc, out=gpre[:, H:2 * H])
    gpre[:, :2 * H].mul_(torch.mul(s, s).neg_().add_(s))
    torch.mul(gct, s[:, :H], out=gpre[:, 2 * H:]).mul_(_one_minus_sq(u))
    return [gpre]


register_op(OpSpec("treelstm_leaf", _tree_leaf_infer, lambda p, a, at, d: treelstm_leaf_torch(a[0]),
                   write=_leaf_write, backward=_leaf_bw))
