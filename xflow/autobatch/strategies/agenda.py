"""``agenda``: DyNet's agenda-based autobatching (Neubig, Goldberg & Dyer, 2017, §3.2; ``exec.cc`` strategy 1).

Keep, for every signature, the list of *ready* nodes (all operands computed). Repeatedly:

1. if an **unbatchable** node is ready (an op DyNet gives signature 0), run it alone — these
   always go first, in the order they became ready;
2. else pick the signature with ready nodes whose **average depth** over all pending nodes of
   that signature is lowest, and run all its ready nodes as one batch. On a tie the scan over
   signature ids (first-seen order) keeps the earlier one *unless* the later one is a simple op
   and so replaces it: affine/matmul (``complex`` ops, after ``nt::COMPLEX`` in DyNet) are
   deferred (``exec.cc``: "tie-break on type, defer affine and matmul");
3. release the users of the batch.

Why the average depth: an operation type that usually occurs early in the graph (embedding
lookups, the first LSTM steps) should run before types that usually occur late (output layers,
losses), so late types wait until *many* of their nodes are ready and run in few large batches,
while the chain of recurrent steps is never blocked. Unlike ``depth``, nodes of one signature at
different depths can share a batch (the output layers of all sentences, whatever their length).

``agenda-level`` (DyNet's undocumented strategy 3) adds one condition to step 2: a signature is
eligible only when every pending node of it at the depth of its most recently readied node is
ready (a whole depth level of that signature runs at once); when no signature qualifies, the plain
rule applies.

Cost: ``O(N + E)`` for the ready lists plus ``O(G · S)`` for the scans (``G`` groups, ``S``
signatures), as in DyNet. Single-source kernel (:mod:`xflow.autobatch._jit`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._jit import copy_i, from_engine, kernel, to_engine, zeros_f, zeros_i

if TYPE_CHECKING:  # pragma: no cover
    from ..schedule import PlanInput

__all__ = ["plan_agenda", "plan_agenda_level", "agenda_kernel"]


def agenda_kernel(sig, waiting0, uptr, users, depth, n_sig, batchable, cplx, level):
    """DyNet's agenda over local arrays (see module docstring); returns ``(order, starts)``."""
    n = len(sig)
    waiting = copy_i(waiting0)
    psum = zeros_f(n_sig)
    pcnt = zeros_i(n_sig)
    head = zeros_i(n_sig)
    tail = zeros_i(n_sig)
    rcount = zeros_i(n_sig)
    last = zeros_i(n_sig)
    nxt = zeros_i(n)
    uq = zeros_i(n)
    for s in range(n_sig):
        head[s] = -1
        tail[s] = -1
    maxd = 0
    n_ops = 0
    for l in range(n):
        if sig[l] >= 0:
            n_ops += 1
            if depth[l] > maxd:
                maxd = depth[l]
    left = zeros_i((maxd + 1) * n_sig if level else 1)  # strategy 3: pending, not ready, per (depth, sig)
    ub = 0
    ue = 0
    for l in range(n):
        s = sig[l]
        if s < 0:
            continue
        psum[s] += depth[l]
        pcnt[s] += 1
        if level:
            left[depth[l] * n_sig + s] += 1
    avg = zeros_f(n_sig)
    for s in range(n_sig):
        avg[s] = psum[s] / pcnt[s] if pcnt[s] > 0 else 0.0
    # initially ready nodes, creation order
    for l in range(n):
        s = sig[l]
        if s < 0 or waiting[l] != 0:
            continue
        if not batchable[s]:
            uq[ue] = l
            ue += 1
        else:
            nxt[l] = -1
            if tail[s] >= 0:
                nxt[tail[s]] = l
            else:
                head[s] = l
            tail[s] = l
            rcount[s] += 1
            last[s] = l
            if level:
                left[depth[l] * n_sig + s] -= 1
    order = zeros_i(n_ops)
    starts = zeros_i(n_ops + 1)
    pos = 0
    G = 0
    while pos < n_ops:
        g0 = pos
        if ub < ue:
            order[pos] = uq[ub]
            ub += 1
            pos += 1
        else:
            best = -1
            bavg = 1e300
            for rule in range(2):
                for s in range(n_sig):
                    if rcount[s] == 0:
                        continue
                    a = avg[s]
                    if bavg > a or (bavg == a and not cplx[s]):
                        if rule == 0 and level and left[depth[last[s]] * n_sig + s] != 0:
                            continue
                        best = s
                        bavg = a
                if best >= 0 or not level:
                    break
            if best < 0:  # cannot happen on a valid graph (a cycle); stop rather than loop forever
                break
            l = head[best]
            while l >= 0:
                order[pos] = l
                pos += 1
                l = nxt[l]
            head[best] = -1
            tail[best] = -1
            rcount[best] = 0
        # release users of the group
        for k in range(g0, pos):
            l = order[k]
            for e in range(uptr[l], uptr[l + 1]):
                u = users[e]
                waiting[u] -= 1
                if waiting[u] == 0:
                    s = sig[u]
                    if not batchable[s]:
                        uq[ue] = u
                        ue += 1
                    else:
                        nxt[u] = -1
                        if tail[s] >= 0:
                            nxt[tail[s]] = u
                        else:
                            head[s] = u
                        tail[s] = u
                        rcount[s] += 1
                        last[s] = u
                        if level:
                            left[depth[u] * n_sig + s] -= 1
        G += 1
        starts[G] = pos
    return order, starts[:G + 1]


def _run(inp: "PlanInput", level: bool) -> tuple[np.ndarray, np.ndarray]:
    order, starts = kernel(agenda_kernel)(
        inp.eng("sig"), inp.eng("waiting"), inp.eng("uptr"), inp.eng("users"), inp.eng("depth"), inp.n_sig,
        to_engine(inp.batchable), to_engine(inp.complex), level)
    order, starts = from_engine(order), from_engine(starts)
    if starts[-1] != inp.n_ops:
        raise RuntimeError("agenda: some nodes never became ready (the graph has a cycle?)")
    return order, starts


def plan_agenda(inp: "PlanInput") -> tuple[np.ndarray, np.ndarray]:
    """DyNet's agenda (strategy 1): lowest average depth first, unbatchable first, affine deferred on ties."""
    return _run(inp, False)


def plan_agenda_level(inp: "PlanInput") -> tuple[np.ndarray, np.ndarray]:
    """DyNet's strategy 3: the agenda, but a signature waits until its current depth level is all ready."""
    return _run(inp, True)
