"""Batched execution of a plan: gather operands, one torch kernel per group, scatter results.

A plan is an ordered list of groups; every node of a group has the same signature, so operand
``j`` of all nodes has one shape and the shared parameters are the same tensors. For each group:

1. **gather** — operand ``j`` of the ``B`` nodes becomes one ``(B, *shape_j)`` tensor. Values are
   stored as ``(source tensor, row)``: the output of an earlier group plus the row of this node.
   Consecutive rows of one source are a slice, which is a *view* (no copy); the same leaf (a
   parameter used by every example) becomes an ``expand`` (no copy); otherwise rows are copied
   (``index_select`` from one source, ``stack`` of row views from several) — see :func:`gather`.
   Ops flagged ``flat`` (``esum``) gather all operands of all nodes in one call, ``(B, n, *shape)``.
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


def _views(g: "Graph", s: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per-row views of a group output (one ``unbind`` per source, cached)."""
    key = id(s)
    v = g._views.get(key)
    if v is None:
        v = g._views[key] = s.unbind(0)
    return v


def value_of(g: "Graph", n: int) -> torch.Tensor:
    """The (per-example) value of node ``n``; raises if it has not run yet."""
    s = g.src[n]
    if s is None:
        raise RuntimeError(f"node {n} ({g.op[n]}) has no value yet: call forward() first")
    r = g.row[n]
    return s if r < 0 else _views(g, s)[r]


def gather(g: "Graph", nodes: Sequence[int]) -> torch.Tensor:
    """Stack the values of ``nodes`` (all of one shape) into ``(len(nodes), *shape)``.

    Fast paths, chosen so that the *backward* pass stays linear in the graph size:

    * one source, consecutive rows → a slice (a view, no copy); the whole source → itself;
    * one leaf repeated → ``expand`` (a view; backward is a sum);
    * one source, scattered rows → ``index_select`` (backward: one ``index_add``);
    * several sources → ``torch.stack`` of per-row views from one cached ``unbind`` per source.
      (Slicing each source instead would make every slice's backward allocate a zero tensor of
      the *whole* source — quadratic in the number of groups on irregular graphs such as trees.)
    """
    src = g.src
    row = g.row
    n0 = nodes[0]
    s0 = src[n0]
    r0 = row[n0]
    if len(nodes) == 1:
        return s0.unsqueeze(0) if r0 < 0 else s0[r0:r0 + 1]
    same = contig = True
    prev = r0
    for n in nodes[1:]:
        if src[n] is not s0:
            same = False
            break
        r = row[n]
        if r != prev + 1:
            contig = False
        prev = r
    if same:
        if r0 < 0:
            return s0.unsqueeze(0).expand(len(nodes), *s0.shape)
        if contig:
            return s0 if (r0 == 0 and prev + 1 == s0.shape[0]) else s0[r0:prev + 1]
        idx = torch.as_tensor([row[n] for n in nodes], device=s0.device)
        return s0.index_select(0, idx)
    return torch.stack([value_of(g, n) for n in nodes], 0)


def execute_plan(g: "Graph", plan: Sequence[Sequence[int]]) -> None:
    """Run every group of ``plan`` in order, storing ``(output, row)`` for each node."""
    ops = g.op
    args = g.args
    views = g.views
    src = g.src
    row = g.row
    for grp in plan:
        n0 = grp[0]
        spec = OPS[ops[n0]]
        nargs = len(args[n0])
        vw = views[n0]
        if spec.flat and vw is None:
            flat = [a for n in grp for a in args[n]]
            X = gather(g, flat)
            gathered = [X.reshape(len(grp), nargs, *X.shape[1:])]
            data = None if g.data[n0] is None else [g.data[n] for n in grp]
        elif len(grp) == 1:
            gathered = [gather(g, (a,)) for a in args[n0]]
            data = None if g.data[n0] is None else [g.data[n0]]
        else:
            gathered = [gather(g, [args[n][j] for n in grp]) for j in range(nargs)]
            data = None if g.data[n0] is None else [g.data[n] for n in grp]
        if vw is not None:  # operand views (x[i:j] expressions): same for the whole group
            gathered = [X if v is None else X[:, v[0]:v[1]] for X, v in zip(gathered, vw)]
            if spec.flat:
                gathered = [torch.stack(gathered, 1)]
        out = spec.kernel(g.params[n0], gathered, g.attrs[n0], data)
        for k, n in enumerate(grp):
            src[n] = out
            row[n] = k
