"""On-the-fly operation autobatching for dynamic networks (after DyNet; Neubig et al., NeurIPS 2017).

Write per-example code against a lazy :class:`Graph`; the graph records operations with their
*signatures* (op, operand shapes, shared-parameter identity), a strategy (``none``, ``depth``,
``agenda``) groups same-signature nodes into batches, and the executor runs one torch kernel per
batch. Gradients flow through torch autograd. See ``docs/autobatch.md``.
"""
from __future__ import annotations

from .cells import (LSTMWeights, TreeLSTMWeights, lstm_sequence, lstm_step, treelstm_leaf, treelstm_node,
                    zeros_state)
from .functional import (add, affine, affine_tanh, concat, cross_entropy, esum, inp, linear, log_softmax, lookup, mul, neg,
                         param, pick, relu, scale, sigmoid, slice_, softmax, sub, sum_elems, tanh)
from .graph import DeviceMismatch, Expr, Graph, GraphClosed, current_graph
from .ops import OPS, OpSpec, register_op
from .strategies import AUTO, STRATEGIES, AutoStrategy, get_strategy, validate_plan

__all__ = [
    "Graph", "Expr", "GraphClosed", "DeviceMismatch", "current_graph",
    "OPS", "OpSpec", "register_op", "STRATEGIES", "AUTO", "AutoStrategy", "get_strategy", "validate_plan",
    "inp", "param", "lookup", "affine", "affine_tanh", "linear", "add", "sub", "mul", "scale", "neg", "tanh", "sigmoid",
    "relu", "concat", "slice_", "pick", "esum", "sum_elems", "softmax", "log_softmax", "cross_entropy",
    "LSTMWeights", "TreeLSTMWeights", "lstm_step", "lstm_sequence", "treelstm_leaf", "treelstm_node",
    "zeros_state",
]
