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

    @property
    def hidden(self) -> int:
        """Hidden size ``H``."""
        return int(self.w_hh.shape[1])

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

    @property
    def hidden(self) -> int:
        """Hidden size ``H``."""
        return int(self.u_l.shape[1])


def _halves(hc: Expr, H: int) -> tuple[Expr, Expr]:
    """The ``[0:H]`` and ``[H:2H]`` views of a ``[h; c]`` node (no nodes recorded)."""
    g = hc.graph
    return Expr(g, hc.node, g._view_tid(hc.tid, 0, H)), Expr(g, hc.node, g._view_tid(hc.tid, H, 2 * H))


def _part(e: Expr, k: int, H: int) -> Expr:
    """View ``e[k*H:(k+1)*H]`` (no node)."""
    g = e.graph
    return Expr(g, e.node, g._view_tid(e.tid, k * H, (k + 1) * H))


def lstm_step(w: LSTMWeights, x: Expr, h: Expr, c: Expr, fused: bool = True) -> tuple[Expr, Expr]:
    """One LSTM step → ``(h_t, c_t)``.

    ``fused``: one ``affine`` + one ``lstm_gates`` node (``h``, ``c`` are views of its output);
    unfused: the ``affine`` and ten elementwise nodes on views of it (3 sigmoid, 2 tanh, 3 mul,
    1 add) — the graph DyNet's ``VanillaLSTMBuilder`` builds (its ``pick_range`` nodes are views here).
    """
    g = x.graph
    pre = g.record("affine", (x, h), (w.b_ih, w.b_hh, w.w_ih, w.w_hh), (2,))
    H = c.shape[0]
    if fused:
        hc = g.record("lstm_gates", (pre, c))
        return _halves(hc, H)
    r1 = g.record_unary
    i = r1("sigmoid", _part(pre, 0, H))
    f = r1("sigmoid", _part(pre, 1, H))
    gg = r1("tanh", _part(pre, 2, H))
    o = r1("sigmoid", _part(pre, 3, H))
    c2 = g.record("add", (g.record("mul", (f, c)), g.record("mul", (i, gg))))
    h2 = g.record("mul", (o, r1("tanh", c2)))
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
    pre = g.record("affine", (x,), (w.b_leaf, w.w_leaf), (1,))
    H = w.hidden
    if fused:
        hc = g.record_unary("treelstm_leaf", pre)
        return _halves(hc, H)
    r1 = g.record_unary
    c = g.record("mul", (r1("sigmoid", _part(pre, 0, H)), r1("tanh", _part(pre, 2, H))))
    h = g.record("mul", (r1("sigmoid", _part(pre, 1, H)), r1("tanh", c)))
    return h, c


def treelstm_node(w: TreeLSTMWeights, left: tuple[Expr, Expr], right: tuple[Expr, Expr],
                  fused: bool = True) -> tuple[Expr, Expr]:
    """Tree-LSTM internal node from its children's ``(h, c)`` → ``(h, c)`` (``fused``: one ``treelstm_gates``)."""
    (hl, cl), (hr, cr) = left, right
    g = hl.graph
    pre = g.record("affine", (hl, hr), (w.b, w.u_l, w.u_r), (1,))
    H = w.hidden
    if fused:
        hc = g.record("treelstm_gates", (pre, cl, cr))
        return _halves(hc, H)
    r1 = g.record_unary
    mul = g.record
    c = mul("add", (mul("add", (mul("mul", (r1("sigmoid", _part(pre, 0, H)), r1("tanh", _part(pre, 4, H)))),
                                mul("mul", (r1("sigmoid", _part(pre, 1, H)), cl)))),
                    mul("mul", (r1("sigmoid", _part(pre, 2, H)), cr))))
    h = mul("mul", (r1("sigmoid", _part(pre, 3, H)), r1("tanh", c)))
    return h, c
