"""``agenda``: DyNet's agenda-based autobatching (Neubig, Goldberg & Dyer, 2017, §3.2).

Keep, for every signature, the list of *ready* nodes (all operands computed). Repeatedly pick the
signature whose ready list is non-empty and whose **average depth** over all pending nodes of that
signature is lowest, run all its ready nodes as one batch, and release their users.

Why the average depth: an operation type that usually occurs early in the graph (embedding
lookups, the first LSTM steps) should run before types that usually occur late (output layers,
losses), so late types wait until *many* of their nodes are ready and run in few large batches,
while the chain of recurrent steps is never blocked. Unlike ``depth``, nodes of one signature at
different depths can share a batch (the output layers of all sentences, whatever their length).

Cost: ``O(N + E)`` to build the user lists and counters plus ``O(G log S)`` heap operations for
``G`` groups over ``S`` signatures; each group is sorted by node id (``O(B log B)``) so that
outputs of one group are read back as contiguous slices by the next.
"""
from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import Graph

__all__ = ["plan_agenda"]


def plan_agenda(graph: "Graph", nodes: Sequence[int]) -> list[list[int]]:
    """Agenda schedule of ``nodes`` (see module docstring)."""
    if not nodes:
        return []
    sig = graph.sig
    depth = graph.depth
    args = graph.args
    first = nodes[0]
    n_local = len(graph.op) - first
    # local index = node - first; pending flag only for nodes in `nodes`
    is_pending = [False] * n_local
    for n in nodes:
        is_pending[n - first] = True
    waiting = [0] * n_local
    users: list[list[int] | None] = [None] * n_local
    sig_sum: dict[int, int] = {}
    sig_cnt: dict[int, int] = {}
    ready: dict[int, list[int]] = {}
    for n in nodes:
        cnt = 0
        for a in args[n]:
            la = a - first
            if la >= 0 and is_pending[la]:
                cnt += 1
                u = users[la]
                if u is None:
                    users[la] = [n]
                else:
                    u.append(n)
        s = sig[n]
        sig_sum[s] = sig_sum.get(s, 0) + depth[n]
        sig_cnt[s] = sig_cnt.get(s, 0) + 1
        if cnt:
            waiting[n - first] = cnt
        else:
            r = ready.get(s)
            if r is None:
                ready[s] = [n]
            else:
                r.append(n)
    avg = {s: sig_sum[s] / sig_cnt[s] for s in sig_sum}
    heap = [(avg[s], s) for s in ready]
    heapq.heapify(heap)
    in_heap = set(ready)
    plan: list[list[int]] = []
    while heap:
        _, s = heapq.heappop(heap)
        in_heap.discard(s)
        batch = ready.pop(s)
        batch.sort()
        plan.append(batch)
        for n in batch:
            u = users[n - first]
            if u is None:
                continue
            for m in u:
                lm = m - first
                w = waiting[lm] - 1
                waiting[lm] = w
                if w == 0:
                    sm = sig[m]
                    r = ready.get(sm)
                    if r is None:
                        ready[sm] = [m]
                        if sm not in in_heap:
                            heapq.heappush(heap, (avg[sm], sm))
                            in_heap.add(sm)
                    else:
                        r.append(m)
    return plan
