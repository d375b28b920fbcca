"""Plan-time analysis of the pending nodes, and the order of nodes inside each batch.

:func:`analyze` turns the nodes recorded since the last forward into a :class:`PlanInput`: local
arrays over the pending range (local index ``l = node - first``; leaves in the range are marked
``sig == -1`` and never planned) with

* ``waiting[l]``  — operands of ``l`` that are themselves pending (DyNet's ``node2left``);
* ``users``       — CSR lists of the pending users of every node (DyNet's ``node2successors``);
* ``depth[l]``    — DyNet's **relative depth**: 0 when every operand already has a value (evaluated
  in an earlier forward, or a leaf), else ``1 + max`` over the pending operands. After an
  incremental forward the new nodes start again at depth 0, so ready nodes of one signature
  are never split into two groups because one hangs below an old, long chain;
* ``height[l]``   — the longest path from ``l`` to a pending sink (used to order batches).

A strategy (:mod:`xflow.autobatch.strategies`) turns that into ``(order, starts)``: the local ids
of the op nodes in execution order and the group boundaries (group ``k`` is
``order[starts[k]:starts[k+1]]``).

:func:`arrange` then orders the members of each group (execution order of groups unchanged) so
that the rows a later batch reads are contiguous where possible — a contiguous operand is a view
of the producing batch's output instead of a copy (DyNet checks the same contiguity in
``exec.cc``). The key, per member: the position (arena, row) of its largest operand where it was
produced (so producer rows are read in order, and each producer's rows together), then **longer
remaining chain first** (``-height``), then creation order. A chain's first batch has no
produced operand (a shared zero state), so it is ordered longest-first; every later step inherits
that order, and the examples that are still running are always a *prefix* of the previous step's
rows — the next step reads a view, as a length-sorted hand-batched LSTM does.

A second pass orders the *free* groups — no operand produced in this forward, and not the primary
operand of any reader (so no reader's order was derived from theirs), like a batch of embedding
lookups — by where their **first reader** (in recording order) reads each member. The lookups of a
BiLSTM are then laid out in the forward LSTM's step order, and every forward step reads its inputs
as one view instead of an ``index_select`` (the backward direction reads them in another order and
still gathers). Batches are unchanged; switch :data:`reader_order`.

All four kernels are single-source (:mod:`xflow.autobatch._jit`): compiled by numba when
available, interpreted otherwise; both give identical results (tested).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._jit import argsort_stable, copy_i, from_engine, kernel, to_engine, zeros_i

if TYPE_CHECKING:  # pragma: no cover
    from .graph import Graph

__all__ = ["PlanInput", "analyze", "arrange", "POS_ROW_BITS", "reader_order"]

#: Second pass of :func:`arrange`: order *free* groups (no produced operand, not the primary operand
#: of any reader) by where their first reader reads them. A switch so that benchmarks can measure it.
reader_order = True

#: Bits of a row inside a batch position key (``source << POS_ROW_BITS | row``).
POS_ROW_BITS = 21
_EMPTY = np.zeros(0, np.int64)  # placeholder of the arrays of a range without op nodes (never written)


@dataclass
class PlanInput:
    """Local arrays of the pending range ``[first, first + n)`` of a graph (see module docstring)."""

    graph: "Graph"
    first: int
    n: int
    n_ops: int
    sig: np.ndarray        # (n,) global signature id, -1 for leaves
    ptr: np.ndarray        # (n + 1,) operand offsets into ``args``
    args: np.ndarray       # global operand node ids
    waiting: np.ndarray    # (n,)
    uptr: np.ndarray       # (n + 1,)
    users: np.ndarray      # local ids
    depth: np.ndarray      # (n,) relative depth
    height: np.ndarray     # (n,)
    n_sig: int
    batchable: np.ndarray  # (n_sig,) bool
    complex: np.ndarray    # (n_sig,) bool
    _eng: dict[str, Any] = field(default_factory=dict, repr=False)

    def eng(self, name: str) -> Any:
        """Array ``name`` as the active engine's sequence type (cached)."""
        v = self._eng.get(name)
        if v is None:
            v = self._eng[name] = to_engine(getattr(self, name))
        return v

    @property
    def ops(self) -> np.ndarray:
        """Local ids of the pending op nodes, creation order."""
        return np.flatnonzero(self.sig >= 0)


def _analyze_kernel(sig, ptr, args, first):
    """waiting, relative depth, users CSR and height of the pending range (see module docstring)."""
    n = len(sig)
    waiting = zeros_i(n)
    depth = zeros_i(n)
    ucount = zeros_i(n + 1)
    for l in range(n):
        if sig[l] < 0:
            continue
        d = 0
        for k in range(ptr[l], ptr[l + 1]):
            a = args[k] - first
            if a >= 0 and sig[a] >= 0:
                waiting[l] += 1
                ucount[a + 1] += 1
                if depth[a] + 1 > d:
                    d = depth[a] + 1
        depth[l] = d
    for l in range(n):
        ucount[l + 1] += ucount[l]
    fill = copy_i(ucount)
    users = zeros_i(ucount[n])
    for l in range(n):
        if sig[l] < 0:
            continue
        for k in range(ptr[l], ptr[l + 1]):
            a = args[k] - first
            if a >= 0 and sig[a] >= 0:
                users[fill[a]] = l
                fill[a] += 1
    height = zeros_i(n)
    for l in range(n - 1, -1, -1):
        if sig[l] < 0:
            continue
        h = 0
        for k in range(ucount[l], ucount[l + 1]):
            hu = height[users[k]] + 1
            if hu > h:
                h = hu
        height[l] = h
    return waiting, depth, ucount, users, height


def analyze(g: "Graph", first: int) -> PlanInput:
    """The :class:`PlanInput` of ``g``'s nodes from ``first`` on (see module docstring)."""
    N = len(g._sig)
    p0 = g._ptr[first]
    sig = np.array(g._sig[first:N], dtype=np.int64)
    ptr = np.array(g._ptr[first:N + 1], dtype=np.int64) - p0
    args = np.array(g._args[p0:], dtype=np.int64)
    n_sig = len(g.sig_keys)
    batchable, cplx = g._sig_flags()
    n = N - first
    n_ops = n - int(np.count_nonzero(sig < 0))
    e = _EMPTY
    inp = PlanInput(g, first, n, n_ops, sig, ptr, args, e, e, e, e, e, n_sig, batchable, cplx)
    if n_ops:
        out = kernel(_analyze_kernel)(inp.eng("sig"), inp.eng("ptr"), inp.eng("args"), first)
        inp.waiting, inp.depth, inp.uptr, inp.users, inp.height = (from_engine(x) for x in out)
    return inp


def _arrange_kernel(order, starts, sig, ptr, args, first, height, primary, rsrc, rrow, g_src, g_off):
    """Sort the members of every group by (producer position of the primary operand, -height, id);
    return the new order and the (source, row) of every local node (group ``g`` writes rows
    ``g_off[g]...`` of arena source ``g_src[g]``)."""
    n = len(sig)
    lsrc = zeros_i(n)
    lrow = zeros_i(n)
    for l in range(n):
        lsrc[l] = -1
        lrow[l] = -1
    out = copy_i(order)
    G = len(starts) - 1
    shift = 1 << 21
    for g in range(G):
        a0 = starts[g]
        B = starts[g + 1] - a0
        if B > 1:
            keys = zeros_i(B)
            for k in range(B):
                m = order[a0 + k]
                j = primary[sig[m]]
                p = -1
                if j >= 0:
                    a = args[ptr[m] + j]
                    la = a - first
                    if la >= 0:
                        if sig[la] >= 0:
                            p = lsrc[la] * shift + lrow[la]
                    elif rrow[ptr[m] + j] >= 0:
                        p = rsrc[ptr[m] + j] * shift + rrow[ptr[m] + j]
                keys[k] = (p + 1) * (1 << 20) + (((1 << 20) - 1) - height[m])
            perm = argsort_stable(keys)
            for k in range(B):
                out[a0 + k] = order[a0 + perm[k]]
        for k in range(B):
            m = out[a0 + k]
            lsrc[m] = g_src[g]
            lrow[m] = g_off[g] + k
    return out, lsrc, lrow


def _reader_order_kernel(order, starts, sig, ptr, args, first, uptr, users, primary, lsrc, lrow, g_off):
    """Second pass of :func:`arrange`: reorder the members of every *free* group by where their first
    reader reads them (see :func:`arrange`); updates ``order`` and ``lrow`` in place."""
    n = len(sig)
    G = len(starts) - 1
    shift = 1 << 21
    for g in range(G):
        a0 = starts[g]
        B = starts[g + 1] - a0
        if B < 2:
            continue
        free = True
        for k in range(B):
            m = order[a0 + k]
            for e in range(ptr[m], ptr[m + 1]):  # a produced operand: its own reads follow its order
                la = args[e] - first
                if la >= 0 and la < n and sig[la] >= 0:
                    free = False
            for e in range(uptr[m], uptr[m + 1]):  # a reader ordered by this group: keep its order
                u = users[e]
                j = primary[sig[u]]
                if j >= 0 and args[ptr[u] + j] - first == m:
                    free = False
            if not free:
                break
        if not free:
            continue
        keys = zeros_i(B)
        for k in range(B):
            m = order[a0 + k]
            if uptr[m + 1] > uptr[m]:
                u = users[uptr[m]]  # the first reader recorded
                keys[k] = lsrc[u] * shift + lrow[u]
            else:
                keys[k] = (1 << 62) + k
        perm = argsort_stable(keys)
        tmp = zeros_i(B)
        for k in range(B):
            tmp[k] = order[a0 + perm[k]]
        for k in range(B):
            order[a0 + k] = tmp[k]
            lrow[tmp[k]] = g_off[g] + k


def primary_slot(spec: Any, tids: Sequence[int], types: Sequence[Any]) -> int:
    """The operand position with the most elements (first on ties), -1 for none/flat (one signature)."""
    if spec.flat or not tids:
        return -1
    sizes = [int(np.prod(types[t][0])) for t in tids]
    return int(np.argmax(sizes))


def primary_slots(g: "Graph") -> np.ndarray:
    """:func:`primary_slot` of every signature (kept by the graph as signatures are registered; the
    array is cached until a signature is added)."""
    cached = g._primary_arr
    if len(cached) != len(g._sig_primary):
        cached = g._primary_arr = np.asarray(g._sig_primary, dtype=np.int64)
    return cached


def arrange(inp: PlanInput, order: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorder group members for contiguous reads (see module docstring); groups keep their order.

    Then, with :data:`reader_order`, the free groups are reordered by their first reader (module
    docstring). Every signature of the forward gets one **arena** (a source, numbered from the graph's current
    number of sources, in order of first use): its groups write consecutive row ranges of it in
    execution order. Sets ``inp.lsrc`` / ``inp.lrow`` (arena and row of every local op node),
    ``inp.g_src`` / ``inp.g_off`` (arena and first row of every group) and ``inp.arena_sig`` /
    ``inp.arena_rows`` (signature and size of every arena).
    """
    g = inp.graph
    if len(order) == 0:
        inp.lsrc = np.full(inp.n, -1, np.int64)
        inp.lrow = np.full(inp.n, -1, np.int64)
        return order, starts
    order = np.asarray(order, dtype=np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    g._register_leaves(inp.first)
    G = len(starts) - 1
    gsig = inp.sig[order[starts[:-1]]].tolist()
    inp.sizes = sizes = np.diff(starts).tolist()
    base = len(g._sources)
    arena_of: dict[int, int] = {}
    rows: list[int] = []
    g_src = np.empty(G, dtype=np.int64)
    g_off = np.empty(G, dtype=np.int64)
    for k in range(G):
        a = arena_of.get(gsig[k])
        if a is None:
            a = arena_of[gsig[k]] = len(rows)
            rows.append(0)
        g_src[k] = base + a
        g_off[k] = rows[a]
        rows[a] += sizes[k]
    inp.g_src, inp.g_off = g_src, g_off
    inp.arena_sig = list(arena_of)
    inp.arena_rows = rows
    rsrc = g._vsrc[inp.args]
    rrow = g._vrow[inp.args]
    starts_e, primary_e, g_off_e = to_engine(starts), to_engine(primary_slots(g)), to_engine(g_off)
    out, lsrc, lrow = kernel(_arrange_kernel)(
        to_engine(order), starts_e, inp.eng("sig"), inp.eng("ptr"), inp.eng("args"), inp.first,
        inp.eng("height"), primary_e, to_engine(rsrc), to_engine(rrow), to_engine(g_src), g_off_e)
    if reader_order:  # in place on the first pass's (writable) order and rows
        kernel(_reader_order_kernel)(
            out, starts_e, inp.eng("sig"), inp.eng("ptr"), inp.eng("args"), inp.first, inp.eng("uptr"),
            inp.eng("users"), primary_e, lsrc, lrow, g_off_e)
    inp.lsrc = from_engine(lsrc)
    inp.lrow = from_engine(lrow)
    return from_engine(out), starts
