"""Recurrent cell helpers for the lazy graph: LSTM (PyTorch gate layout) and binary Tree-LSTM.

Each cell step is two batched nodes plus two slices: one ``affine`` for all gate preactivations
(``W_ih x + W_hh h + b_ih + b_hh``) and one fused gate op (``lstm_gates`` / ``treelstm_gates``)
producing ``[h; c]``. Weights are plain tensors, so the same parameters drive the eager and the
hand-batched PyTorch baselines (tests check that all of them compute the same loss).

LSTM (Hochreiter & Schmidhuber; PyTorch's ``nn.LSTM`` layout ``i, f, g, o``):

.. math::
    [i; f; g; o] = W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh},\\quad
    c_t = \\sigma(f) c_{t-1} + \\sigma(i) \\tanh(g),\\quad h_t = \\sigma(o) \\tanh(c_t)

Binary Tree-LSTM (Tai, Socher & Manning 2015, N-ary variant): leaves ``[i; o; u] = W x + b``,
``c = σ(i) tanh(u)``; internal nodes ``[i; f_l; f_r; o; u] = U_l h_l + U_r h_r + b``,
``c = σ(i) tanh(u) + σ(f_l) c_l + σ(f_r) c_r``, ``h = σ(o) tanh(c)``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .graph import Expr

__all__ = ["LSTMWeights", "TreeLSTMWeights", "lstm_step", "lstm_sequence", "treelstm_leaf", "treelstm_node",
           "zeros_state"]

_ZEROS: dict[tuple, torch.Tensor] = {}


def zeros_state(g, size: int, like: torch.Tensor) -> Expr:
    """A zero vector leaf of ``size`` shared by all examples of ``g`` (one identity → batches)."""
    key = (size, like.dtype, like.device)
    z = _ZEROS.get(key)
    if z is None:
        z = _ZEROS[key] = torch.zeros(size, dtype=like.dtype, device=like.device)
    return g.param(z)


@dataclass(frozen=True)
class LSTMWeights:
    """One LSTM direction: ``w_ih (4H, in)``, ``w_hh (4H, H)``, ``b_ih (4H,)``, ``b_hh (4H,)``."""

    w_ih: torch.Tensor
    w_hh: torch.Tensor
    b_ih: torch.Tensor
    b_hh: torch.Tensor

    def __post_init__(self) -> None:
        object.__setattr__(self, "_params", (self.b_ih, self.b_hh, self.w_ih, self.w_hh))
        object.__setattr__(self, "_key", ("affine", (2,), *map(id, self._params), -1))
        object.__setattr__(self, "_H", int(self.w_hh.shape[1]))

    @property
    def hidden(self) -> int:
        """Hidden size ``H``."""
        return self._H

    @classmethod
    def from_lstm(cls, lstm: torch.nn.LSTM, reverse: bool = False) -> "LSTMWeights":
        """The layer-0 weights of an ``nn.LSTM`` (``reverse=True``: the backward direction)."""
        sfx = "_l0_reverse" if reverse else "_l0"
        return cls(*(getattr(lstm, n + sfx) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))


@dataclass(frozen=True)
class TreeLSTMWeights:
    """Binary Tree-LSTM: leaf ``w_leaf (3H, in)``, ``b_leaf (3H,)``; node ``u_l, u_r (5H, H)``, ``b (5H,)``."""

    w_leaf: torch.Tensor
    b_leaf: torch.Tensor
    u_l: torch.Tensor
    u_r: torch.Tensor
    b: torch.Tensor

    def __post_init__(self) -> None:
        object.__setattr__(self, "_leaf_params", (self.b_leaf, self.w_leaf))
        object.__setattr__(self, "_leaf_key", ("affine", (1,), id(self.b_leaf), id(self.w_leaf), -1))
        object.__setattr__(self, "_node_params", (self.b, self.u_l, self.u_r))
        object.__setattr__(self, "_node_key", ("affine", (1,), id(self.b), id(self.u_l), id(self.u_r), -1))
        object.__setattr__(self, "_H", int(self.u_l.shape[1]))

    @property
    def hidden(self) -> int:
        """Hidden size ``H``."""
        return self._H


def _halves(hc: Expr, H: int) -> tuple[Expr, Expr]:
    """The ``[0:H]`` and ``[H:2H]`` views of a ``[h; c]`` node (no nodes recorded)."""
    g = hc.graph
    vids = g._view_ids
    t = hc.tid
    a = vids.get((t, 0, H))
    b = vids.get((t, H, 2 * H))
    if a is None or b is None:
        a, b = g._view_tid(t, 0, H), g._view_tid(t, H, 2 * H)
    return Expr(g, hc.node, a), Expr(g, hc.node, b)


def _affine(g, key: tuple, params: tuple, attrs: tuple, xs: tuple) -> Expr:
    """Record an affine node whose canonical signature key is ``key + operand types``."""
    if len(xs) == 2:
        x, h = xs
        if x.__class__ is Expr and h.__class__ is Expr and x.graph is g and h.graph is g:
            sid = g._sig_ids.get(key + (x.tid, h.tid))
            if sid is not None:
                return g._push(sid, x.node, h.node)
    elif xs[0].__class__ is Expr and xs[0].graph is g:
        sid = g._sig_ids.get(key + (xs[0].tid,))
        if sid is not None:
            return g._push(sid, xs[0].node)
    return g.record("affine", xs, params, attrs)


def _part(e: Expr, k: int, H: int) -> Expr:
    """View ``e[k*H:(k+1)*H]`` (no node)."""
    g = e.graph
    return Expr(g, e.node, g._view_tid(e.tid, k * H, (k + 1) * H))


def lstm_step(w: LSTMWeights, x: Expr, h: Expr, c: Expr, fused: bool = True) -> tuple[Expr, Expr]:
    """One LSTM step → ``(h_t, c_t)``.

    ``fused``: one ``affine`` + one ``lstm_gates`` node (``h``, ``c`` are views of its output);
    unfused: the ``affine`` and ten elementwise nodes on views of it (3 sigmoid, 2 tanh, 3 mul,
    1 add) — the graph DyNet's ``VanillaLSTMBuilder`` builds (its ``pick_range`` nodes are views here).
    A fused step whose signatures the graph already knows (same weights, same operand types) appends
    its two nodes straight from the graph's cell cache.
    """
    g = x.graph
    if fused:
        if x.__class__ is Expr and h.__class__ is Expr and c.__class__ is Expr and h.graph is g and c.graph is g:
            ck = (w._key, x.tid, h.tid, c.tid)  # parameter identities (kept alive by the graph) and types
            hit = g._cells.get(ck)
            if hit is not None:  # the step's two signatures are known: append both nodes at once
                sa, sgt, th, tc = hit
                sig, args, ptr, idata = g._sig, g._args, g._ptr, g._idata
                n = len(sig)
                sig.append(sa)
                sig.append(sgt)
                args.append(x.node)
                args.append(h.node)
                ptr.append(len(args))
                args.append(n)
                args.append(c.node)
                ptr.append(len(args))
                idata.append(0)
                idata.append(0)
                return Expr(g, n + 1, th), Expr(g, n + 1, tc)
        else:
            ck = None
        pre = _affine(g, w._key, w._params, (2,), (x, h))
        hc = g.record_binary("lstm_gates", pre, c)
        hh, cc = _halves(hc, w._H)
        if ck is not None and g._sig[pre.node] >= 0:
            g._cells[ck] = (g._sig[pre.node], g._sig[hc.node], hh.tid, cc.tid)
        return hh, cc
    pre = _affine(g, w._key, w._params, (2,), (x, h))
    H = w._H
    r1 = g.record_unary
    i = r1("sigmoid", _part(pre, 0, H))
    f = r1("sigmoid", _part(pre, 1, H))
    gg = r1("tanh", _part(pre, 2, H))
    o = r1("sigmoid", _part(pre, 3, H))
    r2 = g.record_binary
    c2 = r2("add", r2("mul", f, c), r2("mul", i, gg))
    h2 = r2("mul", o, r1("tanh", c2))
    return h2, c2


def lstm_sequence(w: LSTMWeights, xs: Sequence[Expr], reverse: bool = False, fused: bool = True) -> list[Expr]:
    """Run an LSTM from a zero state over ``xs``; returns the hidden states aligned with ``xs``."""
    if not xs:
        return []
    g = xs[0].graph
    h = c = zeros_state(g, w.hidden, w.w_hh)
    order = range(len(xs) - 1, -1, -1) if reverse else range(len(xs))
    out: list[Expr | None] = [None] * len(xs)
    for t in order:
        h, c = lstm_step(w, xs[t], h, c, fused)
        out[t] = h
    return out  # type: ignore[return-value]


def treelstm_leaf(w: TreeLSTMWeights, x: Expr, fused: bool = True) -> tuple[Expr, Expr]:
    """Tree-LSTM leaf from its input vector → ``(h, c)`` (``fused``: one ``treelstm_leaf`` node)."""
    g = x.graph
    pre = _affine(g, w._leaf_key, w._leaf_params, (1,), (x,))
    H = w._H
    if fused:
        hc = g.record_unary("treelstm_leaf", pre)
        return _halves(hc, H)
    r1 = g.record_unary
    r2 = g.record_binary
    c = r2("mul", r1("sigmoid", _part(pre, 0, H)), r1("tanh", _part(pre, 2, H)))
    h = r2("mul", r1("sigmoid", _part(pre, 1, H)), r1("tanh", c))
    return h, c


def treelstm_node(w: TreeLSTMWeights, left: tuple[Expr, Expr], right: tuple[Expr, Expr],
                  fused: bool = True) -> tuple[Expr, Expr]:
    """Tree-LSTM internal node from its children's ``(h, c)`` → ``(h, c)`` (``fused``: one ``treelstm_gates``)."""
    (hl, cl), (hr, cr) = left, right
    g = hl.graph
    pre = _affine(g, w._node_key, w._node_params, (1,), (hl, hr))
    H = w._H
    if fused:
        sid = g._sig_ids.get(("treelstm_gates", (), -1, pre.tid, cl.tid, cr.tid))
        if sid is not None and cl.__class__ is Expr and cr.__class__ is Expr and cl.graph is g and cr.graph is g:
            hc = g._push(sid, pre.node, cl.node, extra=cr.node)
        else:
            hc = g.record("treelstm_gates", (pre, cl, cr))
        return _halves(hc, H)
    r1 = g.record_unary
    r2 = g.record_binary
    c = r2("add", r2("add", r2("mul", r1("sigmoid", _part(pre, 0, H)), r1("tanh", _part(pre, 4, H))),
                     r2("mul", r1("sigmoid", _part(pre, 1, H)), cl)),
           r2("mul", r1("sigmoid", _part(pre, 2, H)), cr))
    h = r2("mul", r1("sigmoid", _part(pre, 3, H)), r1("tanh", c))
    return h, c
