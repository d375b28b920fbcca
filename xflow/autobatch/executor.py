"""Batched execution of a plan: gather operands, one torch kernel per group, scatter results.

A plan is an ordered list of groups; every node of a group has the same signature, so operand
``j`` of all nodes has one shape and the shared parameters are the same tensors. For each group:

1. **gather** — operand ``j`` of the ``B`` nodes becomes one ``(B, *shape_j)`` tensor. Values are
   stored as ``(source tensor, row)``: the output of an earlier group plus the row of this node.
   Consecutive rows of one source collapse into a slice, which is a *view* (no copy); a run of the
   same leaf (a parameter used by every example) becomes an ``expand`` (no copy). Only when the
   pieces come from several sources does a ``torch.cat`` copy them.
2. **kernel** — ``OPS[op].kernel(params, gathered, attrs, data)`` runs once for the group.
3. **scatter** — nothing is copied: node ``k`` of the group records ``(output, k)``.

Every step is an ordinary differentiable torch op, so ``backward`` through the batched graph
gives exactly the gradients of the unbatched one (up to float summation order).

Cost: gather is ``O(B)`` Python work per operand plus one copy when operands are scattered;
each group costs one kernel launch regardless of ``B`` — that is the whole point.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from .ops import OPS

if TYPE_CHECKING:  # pragma: no cover
    from .graph import Graph

__all__ = ["gather", "execute_plan", "value_of"]


def value_of(g: "Graph", n: int) -> torch.Tensor:
    """The (per-example) value of node ``n``; raises if it has not run yet."""
    s = g.src[n]
    if s is None:
        raise RuntimeError(f"node {n} ({g.op[n]}) has no value yet: call forward() first")
    r = g.row[n]
    return s if r < 0 else s[r]


def gather(g: "Graph", nodes: Sequence[int]) -> torch.Tensor:
    """Stack the values of ``nodes`` (all of one shape) into ``(len(nodes), *shape)``.

    Runs of consecutive rows of one source are slices (views); runs of one leaf are expands.
    """
    src = g.src
    row = g.row
    pieces: list[torch.Tensor] = []
    cur = None  # current run: source tensor
    start = prev = 0
    leaf_run = 0  # >0: current run is `leaf_run` copies of the leaf `cur`
    for n in nodes:
        s = src[n]
        r = row[n]
        if r < 0:  # leaf value
            if leaf_run and s is cur:
                leaf_run += 1
                continue
            if cur is not None:
                pieces.append(cur.unsqueeze(0).expand(leaf_run, *cur.shape) if leaf_run else cur[start:prev + 1])
            cur, leaf_run = s, 1
            continue
        if not leaf_run and s is cur and r == prev + 1:
            prev = r
            continue
        if cur is not None:
            pieces.append(cur.unsqueeze(0).expand(leaf_run, *cur.shape) if leaf_run else cur[start:prev + 1])
        cur, start, prev, leaf_run = s, r, r, 0
    if cur is None:
        raise ValueError("gather of an empty node list")
    pieces.append(cur.unsqueeze(0).expand(leaf_run, *cur.shape) if leaf_run else cur[start:prev + 1])
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces, 0)


def execute_plan(g: "Graph", plan: Sequence[Sequence[int]]) -> None:
    """Run every group of ``plan`` in order, storing ``(output, row)`` for each node."""
    ops = g.op
    args = g.args
    src = g.src
    row = g.row
    for grp in plan:
        n0 = grp[0]
        spec = OPS[ops[n0]]
        nargs = len(args[n0])
        if len(grp) == 1:
            gathered = [gather(g, (a,)) for a in args[n0]]
            data = None if g.data[n0] is None else [g.data[n0]]
        else:
            gathered = [gather(g, [args[n][j] for n in grp]) for j in range(nargs)]
            data = None if g.data[n0] is None else [g.data[n] for n in grp]
        out = spec.kernel(g.params[n0], gathered, g.attrs[n0], data)
        for k, n in enumerate(grp):
            src[n] = out
            row[n] = k
