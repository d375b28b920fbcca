"""``depth``: group nodes by (depth, signature); run depth levels in increasing order (DyNet's strategy 2).

Depth is DyNet's *relative* depth (:mod:`xflow.autobatch.schedule`): 0 when every operand already
has a value, else ``1 + max`` over the pending operands. Two nodes of equal depth never depend on
each other, and every operand of a node has a smaller depth, so running levels in order is valid.
As in ``exec.cc`` (a ``std::map`` keyed by ``(depth, signature)``), groups run by depth, then by
signature id (first-seen order), and unbatchable nodes (DyNet's signature 0) run one per group
before the batches of their level. Cost: one stable sort, ``O(N log N)``.

Weakness (the reason for ``agenda``): the same operation sitting at different depths in different
examples never merges — e.g. the output layer of a short sentence and of a long one, or the
Tree-LSTM nodes of unbalanced trees — so the number of kernels grows with the spread of depths.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..schedule import PlanInput

__all__ = ["plan_depth"]


def plan_depth(inp: "PlanInput") -> tuple[np.ndarray, np.ndarray]:
    """Groups keyed by ``(depth, signature)`` (unbatchable first, one node each), see module docstring."""
    ops = inp.ops
    sig = inp.sig[ops]
    unb = ~inp.batchable[sig]
    key = inp.depth[ops] * (inp.n_sig + 1) + np.where(unb, 0, sig + 1)
    perm = np.argsort(key, kind="stable")
    order = ops[perm]
    k = key[perm]
    brk = np.ones(len(order), dtype=bool)
    brk[1:] = (k[1:] != k[:-1]) | unb[perm][1:]  # a new group at every key change and every unbatchable node
    starts = np.append(np.flatnonzero(brk), len(order)).astype(np.int64)
    return order, starts
