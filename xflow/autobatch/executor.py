"""Batched execution of a plan: one gather per operand, one kernel per group, a batched backward.

A plan is an ordered list of groups; every node of a group has the same signature, so operand
``j`` of all nodes has one type and the shared parameters are the same tensors. Values live in
**sources**: the output ``(B, *shape)`` of a group (node = one row of it), or a leaf tensor
(one unbatched value, row ``-1``). Executing one forward (one *segment*):

1. **gather descriptors** (:func:`_gather_kernel`, single-source, compiled when numba is present):
   for every group and operand position, from the (source, row) of the operands —

   * ``VIEW``   one source, consecutive rows → a slice of it (no copy; DyNet's contiguity check);
   * ``EXPAND`` one leaf for every node (a shared parameter or zero state) → ``expand`` (no copy);
   * ``INDEX``  one source, scattered rows → ``index_select`` (one copy kernel);
   * ``RUNS``   several sources in a few contiguous runs → one ``cat`` of slices;
   * ``MULTI``  many sources → ``cat`` of the distinct sources and one ``index_select``.

   All index tensors of a segment live in one buffer, moved to the device once (no per-group
   host→device copy on a GPU); per-node data (word ids, labels) likewise.
2. **kernel** — ``OPS[op].kernel(params, gathered, attrs, data)`` runs once for the group.
3. **backward** (training): the whole segment is one ``torch.autograd.Function`` whose inputs are
   the parameters, the leaves and the earlier segments' outputs it reads, and whose outputs are
   its group outputs. Its backward walks the groups in reverse as DyNet's ``backward`` does: each
   group's operand gradients come from the op's hand-written ``backward`` (or torch autograd on
   that group for ops without one) and are **scattered once per operand** with the inverse of
   the forward gather (``add_`` into a slice, ``index_add_``, a sum for ``EXPAND``) into a gradient
   buffer per source; weight gradients are deferred (``ParamGrads.outer``) and computed once per weight and
   signature as one matrix product over all its rows, embedding rows into one sparse gradient when the lookup asked for it.
   Gradients equal the unbatched ones up to float summation order (tested).

Incremental forwards chain segments: a later segment lists the earlier outputs it reads as
inputs, and the previous training segment's *token* (an empty output that orders the backwards),
so one ``loss.backward()`` runs every segment's batched backward in reverse. What a later segment
owes an earlier one goes through the graph's :class:`BackwardPool` instead of autograd: the
gradients of the earlier outputs it read (accumulated in one buffer per arena, not returned as one
full-size tensor per reader) and its rows of every weight an earlier segment also reads (the
earliest reader computes each weight's gradient once, over the rows of all segments, as DyNet's
single backward does).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ._jit import from_engine, kernel, to_engine, zeros_i
from .ops import set_segment_memo

if TYPE_CHECKING:  # pragma: no cover
    from .graph import Graph
    from .schedule import PlanInput

__all__ = ["Segment", "run_segment", "gather_values", "VIEW", "EXPAND", "INDEX", "RUNS", "MULTI", "KIND_NAMES",
           "MAX_RUNS", "force_autograd"]

VIEW, EXPAND, INDEX, RUNS, MULTI = 0, 1, 2, 3, 4
KIND_NAMES = ("view", "expand", "index", "runs", "multi")
#: Up to this many contiguous runs an operand is one ``cat`` of slices; beyond, ``cat`` + ``index_select``.
MAX_RUNS = 8

#: Test switch: differentiate every op with torch autograd on the group (ignore hand-written backwards).
force_autograd = False
#: Switch (tests, benchmarks): compute deferred weight gradients per group instead of once per signature.
defer_weight_grads = True
#: Switch (tests, benchmarks): a weight read by several forwards gets one product over all their rows
#: (the earliest reader computes it, :class:`BackwardPool`) instead of one product per forward.
pool_weight_grads = True
#: Switch (tests, benchmarks): a later segment's gradients for an earlier segment's arenas go through
#: the graph's :class:`BackwardPool` (accumulated in one buffer per arena) instead of through autograd.
route_activation_grads = True
#: Switch (tests, benchmarks): hoist input projections (see :meth:`_Runner.hoist_plan`): a term
#: ``W_j x`` that many groups of one signature read from one complete source is computed for all the
#: source's rows in one matrix product, and each group copies its rows of it.
hoist_projections = False
#: Largest projection (bytes) the executor hoists; bigger ones stay per group.
HOIST_MAX_BYTES = 256 << 20


def _gather_kernel(order, starts, ptr, rs, rr, flat, n_src, max_runs):
    """Gather descriptors of every (group, operand position) — see module docstring.

    ``order``/``starts``: the arranged plan (local ids); ``ptr``: local operand offsets; ``rs``/``rr``:
    source and row of every operand reference (aligned with the operand array). Returns slot
    arrays ``(group, kind, src, a, b)`` and the buffers they point into: ``idx`` (rows of
    ``INDEX`` in ``[a, b)``; positions of ``MULTI`` in ``[src, src + length)``) and ``runs``
    (``(src, r0, r1)`` triples of ``RUNS`` in ``[a, b)``, ``r0 = -1`` for a leaf; the distinct
    ``(src, offset, rows)`` of ``MULTI`` in ``[a, b)``).
    """
    G = len(starts) - 1
    n_slots = 0
    n_refs = 0
    for g in range(G):
        m0 = order[starts[g]]
        na = ptr[m0 + 1] - ptr[m0]
        B = starts[g + 1] - starts[g]
        n_refs += B * na
        n_slots += 1 if flat[g] else na
    s_group = zeros_i(n_slots)
    s_kind = zeros_i(n_slots)
    s_src = zeros_i(n_slots)
    s_a = zeros_i(n_slots)
    s_b = zeros_i(n_slots)
    idx = zeros_i(3 * n_refs + 1)
    runs = zeros_i(3 * n_refs + 3)
    tmp = zeros_i(n_refs + 1)
    mark = zeros_i(n_src)
    for s in range(n_src):
        mark[s] = -1
    ni = 0
    nr = 0
    slot = 0
    for g in range(G):
        g0 = starts[g]
        B = starts[g + 1] - g0
        m0 = order[g0]
        na = ptr[m0 + 1] - ptr[m0]
        n_pos = 1 if flat[g] else na
        for j in range(n_pos):
            L = 0
            if flat[g]:
                for k in range(B):
                    m = order[g0 + k]
                    for e in range(ptr[m], ptr[m + 1]):
                        tmp[L] = e
                        L += 1
            else:
                for k in range(B):
                    m = order[g0 + k]
                    tmp[L] = ptr[m] + j
                    L += 1
            s0 = rs[tmp[0]]
            r0 = rr[tmp[0]]
            same = True
            contig = True
            n_runs = 1
            for i in range(1, L):
                s = rs[tmp[i]]
                r = rr[tmp[i]]
                ps = rs[tmp[i - 1]]
                pr = rr[tmp[i - 1]]
                if s != s0:
                    same = False
                if r != pr + 1 or r < 0:
                    contig = False
                if s != ps or r != pr + 1 or r < 0:
                    n_runs += 1
            s_group[slot] = g
            s_src[slot] = s0
            if same and r0 < 0:
                s_kind[slot] = 1  # EXPAND
            elif same and contig:
                s_kind[slot] = 0  # VIEW
                s_a[slot] = r0
                s_b[slot] = r0 + L
            elif same:
                s_kind[slot] = 2  # INDEX
                s_a[slot] = ni
                for i in range(L):
                    idx[ni] = rr[tmp[i]]
                    ni += 1
                s_b[slot] = ni
            elif n_runs <= max_runs:
                s_kind[slot] = 3  # RUNS
                s_a[slot] = nr
                i = 0
                while i < L:
                    s = rs[tmp[i]]
                    r = rr[tmp[i]]
                    e = i + 1
                    if r >= 0:
                        while e < L and rs[tmp[e]] == s and rr[tmp[e]] == rr[tmp[e - 1]] + 1:
                            e += 1
                    runs[3 * nr] = s
                    runs[3 * nr + 1] = r
                    runs[3 * nr + 2] = r + (e - i) if r >= 0 else -1
                    nr += 1
                    i = e
                s_b[slot] = nr
            else:
                # MULTI: the rows each distinct source contributes (grouped by source, first-appearance
                # order, one index_select each), then a permutation back to member order if needed
                s_kind[slot] = 4
                s_a[slot] = nr
                q0 = nr
                for i in range(L):
                    s = rs[tmp[i]]
                    if mark[s] < 0:
                        mark[s] = nr
                        runs[3 * nr] = s
                        runs[3 * nr + 2] = 0
                        nr += 1
                    runs[3 * mark[s] + 2] += 1
                pos = ni
                for q in range(q0, nr):  # index range of each source's rows
                    runs[3 * q + 1] = pos
                    pos += runs[3 * q + 2]
                    runs[3 * q + 2] = runs[3 * q + 1]  # fill pointer (restored below)
                ident = True
                pbase = pos  # perm: ni+L .. ni+2L, inverse: ni+2L .. ni+3L
                for i in range(L):
                    s = rs[tmp[i]]
                    q = mark[s]
                    r = rr[tmp[i]]
                    w = runs[3 * q + 2]
                    idx[w] = r if r >= 0 else 0
                    runs[3 * q + 2] = w + 1
                    p = w - ni
                    idx[pbase + i] = p
                    idx[pbase + L + p] = i
                    if p != i:
                        ident = False
                for q in range(q0, nr):
                    runs[3 * q + 2] = runs[3 * q + 2] - runs[3 * q + 1]  # back to a count
                    mark[runs[3 * q]] = -1
                s_b[slot] = nr
                if ident:
                    s_src[slot] = -1
                    ni = pbase
                else:
                    s_src[slot] = pbase
                    ni = pbase + 2 * L
            slot += 1
    return s_group, s_kind, s_src, s_a, s_b, idx[:ni], runs[:3 * nr]


@dataclass
class Segment:
    """One executed forward: its node range, plan and gather statistics (for inspection and tests)."""

    first: int
    end: int
    order: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # global node ids
    starts: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    depth: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    gathers: Counter = field(default_factory=Counter)  # kind name -> number of operand gathers
    rows_copied: int = 0  # operand rows copied by gathers (forward)
    hoisted: int = 0  # groups whose projection term was read from a hoisted product (forward)
    projections: int = 0  # hoisted products computed (forward)
    group_gathers: list = field(default_factory=list)  # per group: the gather kind name of each operand slot

    @property
    def n_groups(self) -> int:
        return len(self.starts) - 1

    def groups_as_lists(self) -> list[list[int]]:
        """The groups as lists of global node ids, execution order."""
        o = self.order.tolist()
        s = self.starts.tolist()
        return [o[s[k]:s[k + 1]] for k in range(len(s) - 1)]


class _Accum:
    """Parameter gradients of one segment's backward: one dense tensor and/or sparse rows per tensor."""

    __slots__ = ("dense", "sparse", "tensors", "deferred")

    def __init__(self) -> None:
        self.dense: dict[int, torch.Tensor] = {}
        self.sparse: dict[int, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        self.tensors: dict[int, torch.Tensor] = {}
        # (id(param), arena, operand or -1 for a row sum) -> [param, [(row offset, rows, X or None)]]
        self.deferred: dict[tuple[int, int, int], list] = {}

    def defer(self, p: torch.Tensor, arena: int, off: int, B: int, X: torch.Tensor | None, key: int) -> None:
        """Remember that ``p`` receives ``gY[off:off+B]^T X`` (``X is None``: the row sum) of ``arena``."""
        k = (id(p), arena, key)
        ent = self.deferred.get(k)
        if ent is None:
            ent = self.deferred[k] = [p, []]
        ent[1].append((off, B, X))

    def flush(self, grad_of_arena, pool: "BackwardPool | None" = None, serial: int = -1) -> None:
        """Compute every deferred product: per (parameter, arena), the output-gradient rows of all its
        groups (one slice of the arena's gradient when they are contiguous, as they are within one
        forward) times the concatenated operands — one GEMM, or one row sum.

        With a ``pool`` (the graph's :class:`BackwardPool`, ``serial`` = this segment's number) the
        rows of a parameter that an earlier segment also reads are handed to the pool instead, and
        the earliest segment reading it (whose backward runs last) computes the product for every
        segment at once; this segment then also computes the pooled products it is the first for."""
        task = torch._C._current_graph_task_id() if pool is not None else -1
        rows_of: dict[tuple, torch.Tensor] = {}  # the weights and bias of one signature share their gY rows
        for (_, arena, key), (p, parts) in self.deferred.items():
            G = grad_of_arena(arena)
            if G is None:
                continue
            parts.sort(key=lambda e: e[0])
            rk = (arena, *(off for off, _, _ in parts), parts[-1][1])
            gY = rows_of.get(rk)
            if gY is None:
                lo = parts[0][0]
                hi = lo
                contiguous = True
                for off, B, _ in parts:
                    if off != hi:
                        contiguous = False
                    hi = off + B if off + B > hi else hi
                gY = G[lo:hi] if contiguous else torch.cat([G[off:off + B] for off, B, _ in parts])
                rows_of[rk] = gY
            X = None if key < 0 else (parts[0][2] if len(parts) == 1 else torch.cat([x for _, _, x in parts]))
            if pool is not None and pool_weight_grads and pool.pools(p, serial):
                pool.put(p, key < 0, gY, X, task)
                continue
            self._product(p, key < 0, gY, X)
        self.deferred.clear()
        if pool is not None:
            for p, bias, gY, X in pool.take(serial, task):
                self._product(p, bias, gY, X)

    def _product(self, p: torch.Tensor, bias: bool, gY: torch.Tensor, X: torch.Tensor | None) -> None:
        if bias:  # a row sum
            self.add(p, gY.sum(0))
        else:
            self.addmm(p, gY.t(), X)

    def add(self, p: torch.Tensor, g: torch.Tensor) -> None:
        k = id(p)
        self.tensors[k] = p
        if g.is_sparse:
            g = g.coalesce()
            self._sparse(p, g.indices()[0], g.values())
            return
        if g.dtype != p.dtype:
            g = g.to(p.dtype)
        t = self.dense.get(k)
        if t is None:
            self.dense[k] = g.clone() if g._is_view() or g.shape != p.shape else g
            if self.dense[k].shape != p.shape:
                self.dense[k] = self.dense[k].expand_as(p).clone()
        else:
            t.add_(g)

    def addmm(self, p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
        k = id(p)
        self.tensors[k] = p
        if a.dtype != p.dtype:
            a, b = a.to(p.dtype), b.to(p.dtype)
        t = self.dense.get(k)
        if t is None:
            self.dense[k] = torch.mm(a, b)
        else:
            t.addmm_(a, b)

    def _sparse(self, p: torch.Tensor, idx: torch.Tensor, vals: torch.Tensor) -> None:
        k = id(p)
        self.tensors[k] = p
        lst = self.sparse.get(k)
        if lst is None:
            lst = self.sparse[k] = ([], [])
        lst[0].append(idx)
        lst[1].append(vals.to(p.dtype))

    def rows(self, p: torch.Tensor, idx: torch.Tensor, vals: torch.Tensor, sparse: bool) -> None:
        if sparse:
            self._sparse(p, idx, vals)
            return
        k = id(p)
        self.tensors[k] = p
        t = self.dense.get(k)
        if t is None:
            t = self.dense[k] = torch.zeros_like(p)
        t.index_add_(0, idx, vals.to(p.dtype))

    def grad_of(self, p: torch.Tensor) -> torch.Tensor | None:
        k = id(p)
        d = self.dense.get(k)
        s = self.sparse.get(k)
        if s is None:
            return d
        idx = torch.cat(s[0]) if len(s[0]) > 1 else s[0][0]
        vals = torch.cat(s[1]) if len(s[1]) > 1 else s[1][0]
        if d is not None:
            return d.index_add_(0, idx, vals)
        return torch.sparse_coo_tensor(idx.unsqueeze(0), vals, p.shape, check_invariants=False)


class BackwardPool:
    """What the segments of one graph hand each other in a backward pass: deferred weight-gradient
    products and the gradients of earlier segments' arenas (DyNet computes a weight's gradient once
    per backward; a parser's ~100 incremental forwards would otherwise each do one small GEMM per
    weight, and return one full-size gradient per earlier arena they read).

    Every training segment gets a serial number and registers, for each parameter it reads, the
    serial of the first segment reading it (:meth:`register`). Segments form a chain (each takes
    the previous one's *token* output as an input), so their backwards run in reverse serial order
    and the first reader of a parameter runs after every later one. A later segment's rows for a
    parameter (the slice of its output gradient and the operand) are :meth:`put` here; the first
    reader :meth:`take` s them and computes one product over all rows (a ``cat`` + one GEMM / one
    row sum). Rows are tagged with the autograd graph task that produced them, so rows left over
    by a pass that never reached the first reader (``torch.autograd.grad`` on other inputs) are
    dropped, never added to a later pass. Arena gradients work the same way (:meth:`routes`,
    :meth:`put_grad`, :meth:`take_grad`): a reader adds into the one buffer of the arena, and the
    arena's writer, whose backward comes later in the chain, takes it.
    """

    __slots__ = ("first", "done", "parts", "serial", "owner", "grads")

    def __init__(self) -> None:
        self.first: dict[int, int] = {}  # id(param) -> serial of its first reading segment
        self.done: set[int] = set()      # serials whose backward has run
        self.parts: dict[tuple[int, bool], list] = {}  # (id(param), bias) -> [param, task, [gY], [X]]
        self.serial = 0
        self.owner: dict[int, int] = {}  # arena source -> serial of the training segment that wrote it
        self.grads: dict[int, tuple[int, torch.Tensor, bool]] = {}  # arena source -> (task, gradient, owned)

    def own(self, sources: Sequence[int], serial: int) -> None:
        """Arena sources ``sources`` are written by training segment ``serial``."""
        for s in sources:
            self.owner[s] = serial

    def routes(self, s: int) -> bool:
        """Whether a later segment hands the gradient of arena ``s`` to the pool (its writer's backward
        is still to come in this pass) instead of returning it through autograd."""
        j = self.owner.get(s)
        return route_activation_grads and j is not None and j not in self.done

    def put_grad(self, s: int, t: torch.Tensor, owned: bool, task: int) -> None:
        """Leave ``t``, the gradient of arena ``s`` accumulated so far in pass ``task``, for the next reader."""
        self.grads[s] = (task, t, owned)

    def take_grad(self, s: int, task: int) -> tuple[torch.Tensor, bool] | None:
        """The gradient later segments of pass ``task`` accumulated for arena ``s`` (and whether the
        tensor may be added to in place), removing it; ``None`` if there is none."""
        ent = self.grads.pop(s, None)
        if ent is None or ent[0] != task:
            return None
        return ent[1], ent[2]

    def register(self, params: Sequence[torch.Tensor]) -> int:
        """A new training segment reading ``params``; returns its serial."""
        s = self.serial
        self.serial += 1
        first = self.first
        for p in params:
            k = id(p)
            j = first.get(k)
            if j is None or j in self.done:  # a consumed first reader computes nothing any more
                first[k] = s
        return s

    def pools(self, p: torch.Tensor, serial: int) -> bool:
        """Whether segment ``serial`` hands ``p``'s rows to the pool: it is ``p``'s first reader (it then
        takes them back at once, with the later segments' rows) or an earlier reader is still pending."""
        j = self.first.get(id(p), -1)
        return j == serial or (0 <= j < serial and j not in self.done)

    def put(self, p: torch.Tensor, bias: bool, gY: torch.Tensor, X: torch.Tensor | None, task: int) -> None:
        key = (id(p), bias)
        ent = self.parts.get(key)
        if ent is None or ent[1] != task:
            ent = self.parts[key] = [p, task, [], []]
        ent[2].append(gY)
        if X is not None:
            ent[3].append(X)

    def take(self, serial: int, task: int) -> list[tuple[torch.Tensor, bool, torch.Tensor, torch.Tensor | None]]:
        """The pooled ``(param, bias, gY, X)`` products segment ``serial`` computes (it is their first
        reader); marks the segment done."""
        self.done.add(serial)
        out = []
        cats: dict[tuple[int, ...], tuple] = {}  # weights of one signature share their gY rows
        for key in [k for k in self.parts if self.first.get(k[0]) == serial]:
            p, t, gys, xs = self.parts.pop(key)
            if t != task:
                continue  # left over from another backward pass
            if len(gys) == 1:
                gY = gys[0]
            else:
                ck = tuple(map(id, gys))
                hit = cats.get(ck)
                if hit is None:
                    hit = cats[ck] = (gys, torch.cat(gys))  # keeps the parts (hence their ids) alive
                gY = hit[1]
            X = None if key[1] else (xs[0] if len(xs) == 1 else torch.cat(xs))
            out.append((p, key[1], gY, X))
        return out


class _PG:
    """The :class:`xflow.autobatch.ops.ParamGrads` view of one group's parameters (group rows
    ``off .. off + B`` of arena ``arena``)."""

    __slots__ = ("params", "acc", "arena", "off", "B", "gY")

    def __init__(self, params: tuple[torch.Tensor, ...], acc: _Accum, arena: int = -1, off: int = 0, B: int = 0,
                 gY: torch.Tensor | None = None):
        self.params = params
        self.acc = acc
        self.arena, self.off, self.B, self.gY = arena, off, B, gY

    def outer(self, k: int, X: torch.Tensor) -> None:
        if defer_weight_grads:
            self.acc.defer(self.params[k], self.arena, self.off, self.B, X, k)
        else:
            self.acc.addmm(self.params[k], self.gY.t(), X)

    def rowsum(self, k: int) -> None:
        if defer_weight_grads:
            self.acc.defer(self.params[k], self.arena, self.off, self.B, None, -1)
        else:
            self.acc.add(self.params[k], self.gY.sum(0))

    def need(self, k: int) -> bool:
        return self.params[k].requires_grad

    def add(self, k: int, g: torch.Tensor) -> None:
        self.acc.add(self.params[k], g)

    def addmm(self, k: int, a: torch.Tensor, b: torch.Tensor) -> None:
        self.acc.addmm(self.params[k], a, b)

    def rows(self, k: int, index: torch.Tensor, values: torch.Tensor, sparse: bool) -> None:
        self.acc.rows(self.params[k], index, values, sparse)


class _Runner:
    """Executes one segment: gathers, kernels into arenas, saved state and the batched backward."""

    def __init__(self, g: "Graph", inp: "PlanInput", order: np.ndarray, starts: np.ndarray, commit: bool):
        self.g = g
        first = inp.first
        self.base = base = len(g._sources)
        self.G = G = len(starts) - 1
        self.gorder = order + first
        self.starts = starts
        self.gsig = inp.sig[order[starts[:-1]]].tolist()
        self.g_src = inp.g_src.tolist()
        self.g_off = inp.g_off.tolist()
        self.arena_sig = list(inp.arena_sig)
        self.arena_rows = list(inp.arena_rows)
        self.A = len(self.arena_sig)
        vsrc = g._vsrc if commit else g._vsrc.copy()
        vrow = g._vrow if commit else g._vrow.copy()
        ops = np.flatnonzero(inp.sig >= 0)
        vsrc[first + ops] = inp.lsrc[ops]
        vrow[first + ops] = inp.lrow[ops]
        self.sizes = inp.sizes if hasattr(inp, "sizes") else np.diff(starts).tolist()
        n_src = base + self.A
        specs = g._sig_spec
        self.flat_sig = {}
        for sid in set(self.gsig):
            self.flat_sig[sid] = g._sig_flat(sid)
        flat = np.fromiter((self.flat_sig[sid] for sid in self.gsig), dtype=np.int64, count=G)
        rs = vsrc[inp.args]
        rr = vrow[inp.args]
        res = kernel(_gather_kernel)(
            to_engine(order), to_engine(starts), inp.eng("ptr"), to_engine(rs), to_engine(rr),
            to_engine(flat), n_src, MAX_RUNS)
        s_group, s_kind, s_src, s_a, s_b, idx, runs = (from_engine(x) for x in res)
        self.slots = list(zip(s_group.tolist(), s_kind.tolist(), s_src.tolist(), s_a.tolist(), s_b.tolist()))
        self.runs = runs.tolist()
        self.slot_lo = np.searchsorted(s_group, np.arange(G + 1)).tolist()
        out_t = g._types[g._sig_out[self.gsig[0]]]
        self.device = out_t[2]
        idx_t = torch.from_numpy(idx)
        self.idx = idx_t if self.device.type == "cpu" else idx_t.to(self.device)
        if any(specs[sid].index_data for sid in set(self.gsig)):
            data = torch.from_numpy(np.array(g._idata[first:], dtype=np.int64)[order])
            self.data = data if self.device.type == "cpu" else data.to(self.device)
        else:
            self.data = None
        kinds = s_kind.tolist()
        self.gathers: Counter = Counter(map(KIND_NAMES.__getitem__, kinds))
        self.rows_copied = int((s_b - s_a)[s_kind == INDEX].sum())
        self.srcs: list[torch.Tensor] = list(g._sources)
        self.src_leaf: list[bool] = list(g._src_leaf)
        self.src_rg: list[bool] = list(g._src_rg)
        self.commit = commit
        self.pool: BackwardPool | None = None  # set by inputs() for a training segment
        self.serial = -1
        self.token_in: torch.Tensor | None = None
        self.n_hoisted = 0
        self.n_projections = 0

    # ------------------------------------------------------------------ forward
    def _gather(self, kind: int, src: int, a: int, b: int, L: int) -> torch.Tensor:
        srcs = self.srcs
        if kind == VIEW:
            S = srcs[src]
            return S if (a == 0 and b == S.shape[0]) else S[a:b]
        if kind == EXPAND:
            S = srcs[src]
            return S.unsqueeze(0).expand(L, *S.shape)
        if kind == INDEX:
            return srcs[src].index_select(0, self.idx[a:b])
        runs = self.runs
        parts = []
        if kind == RUNS:
            for q in range(a, b):
                s, r0, r1 = runs[3 * q], runs[3 * q + 1], runs[3 * q + 2]
                parts.append(srcs[s].unsqueeze(0) if r0 < 0 else srcs[s][r0:r1])
            return torch.cat(parts, 0)
        idx = self.idx
        for q in range(a, b):  # MULTI: each source's rows, concatenated, then permuted to member order
            s, i0, n = runs[3 * q], runs[3 * q + 1], runs[3 * q + 2]
            S = srcs[s]
            if self.src_leaf[s]:
                parts.append(S.unsqueeze(0).expand(n, *S.shape))
            else:
                parts.append(S.index_select(0, idx[i0:i0 + n]))
        X = torch.cat(parts, 0) if len(parts) > 1 else parts[0]
        return X if src < 0 else X.index_select(0, idx[src:src + L])

    def _slot_rg(self, kind: int, src: int, a: int, b: int) -> bool:
        if kind in (VIEW, EXPAND, INDEX):
            return self.src_rg[src]
        runs = self.runs
        return any(self.src_rg[runs[3 * q]] for q in range(a, b))

    def _operands(self, gi: int, sid: int, B: int, skip: int = -1) -> tuple[list[torch.Tensor], list[bool]]:
        """The gathered operands of group ``gi`` and whether each needs a gradient (``skip``: that
        operand position is not gathered; its entry is ``None``)."""
        g = self.g
        in_t = g._sig_in[sid]
        types = g._types
        out_dtype = types[g._sig_out[sid]][1]
        flat = self.flat_sig[sid]
        Xs: list[torch.Tensor] = []
        need: list[bool] = []
        lo, hi = self.slot_lo[gi], self.slot_lo[gi + 1]
        slots = self.slots
        srcs = self.srcs
        for si in range(lo, hi):
            _, kind, src, a, b = slots[si]
            if si - lo == skip:
                Xs.append(None)  # type: ignore[arg-type]
                need.append(self._slot_rg(kind, src, a, b))
                continue
            t = types[in_t[0] if flat else in_t[si - lo]]
            sl = t[3]
            if kind == VIEW and sl is not None:  # rows and columns in one indexing step
                X = srcs[src][a:b, sl[0]:sl[1]]
            else:
                X = self._gather(kind, src, a, b, B * len(in_t) if flat else B)
                if sl is not None:
                    X = X[:, sl[0]:sl[1]]
            if t[1] != out_dtype and t[1].is_floating_point:
                X = X.to(out_dtype)
            if flat:
                X = X.reshape(B, len(in_t), *X.shape[1:])
            Xs.append(X)
            need.append(self._slot_rg(kind, src, a, b))
        if flat is False and g._sig_spec[sid].flat:  # n-ary op with mixed views: stack per-position gathers
            Xs = [torch.stack(Xs, 1)]
            need = [any(need)]
        return Xs, need

    def hoist_plan(self, train: bool) -> dict[int, tuple[int, tuple[int, int, int], int, int, int]]:
        """Groups whose term ``j`` is read from a hoisted projection: ``gi -> (j, key, kind, a, b)``.

        For an op with :attr:`~xflow.autobatch.ops.OpSpec.project` (``affine``, ``affine_tanh``), the
        term ``W_j x_j`` of a group whose operand ``j`` is one gather (a view or an index) from a source
        ``S`` already complete when the group runs (a leaf, an earlier forward's output, or an arena
        whose last writing group comes earlier) is a set of rows of ``P = b + S W_j^T``. When at least
        two groups of the signature read term ``j`` from ``S`` and their reads cover at least half of
        ``S``'s rows, ``P`` is computed once (one ``(|S|, in) x (in, out)`` product instead of one
        small product per group, which is what ``nn.LSTM`` does with its input projection on CPU)
        and each group copies its rows of ``P`` into its output before adding its other terms. The
        same floating-point terms are summed (in another order, so results agree to rounding).
        A group differentiated by torch autograd (:data:`force_autograd`, or an op without a
        backward) computes its product itself; in training the operand is still gathered for the
        backward.
        """
        if not hoist_projections:
            return {}
        g = self.g
        specs, types, sattrs = g._sig_spec, g._types, g._sig_attrs
        slots, lo = self.slots, self.slot_lo
        last_write: dict[int, int] = {}
        for gi, a in enumerate(self.g_src):
            last_write[a] = gi
        reads: dict[tuple[int, int, int], list[tuple[int, int, int, int]]] = {}
        for gi, sid in enumerate(self.gsig):
            spec = specs[sid]
            if spec.project is None or self.flat_sig[sid]:
                continue
            out_t = types[g._sig_out[sid]]
            in_t = g._sig_in[sid]
            for si in range(lo[gi], lo[gi + 1]):
                _, kind, src, a, b = slots[si]
                if kind not in (VIEW, INDEX) or self.src_leaf[src] or last_write.get(src, -1) >= gi:
                    continue
                if types[in_t[si - lo[gi]]][1] != out_t[1]:
                    continue
                reads.setdefault((sid, si - lo[gi], src), []).append((gi, kind, a, b))
        plan: dict[int, tuple[int, tuple[int, int, int], int, int, int]] = {}
        for key, rs in reads.items():
            sid, j, src = key
            rows = self.srcs[src].shape[0]
            width = types[g._sig_out[sid]][0]
            nbytes = rows * int(np.prod(width)) * types[g._sig_out[sid]][1].itemsize
            if len(rs) < 2 or 2 * sum(b - a for _, _, a, b in rs) < rows or nbytes > HOIST_MAX_BYTES:
                continue
            for gi, kind, a, b in rs:
                if gi not in plan:  # one hoisted term per group (the first one found)
                    plan[gi] = (j, key, kind, a, b)
        return plan

    def forward(self, train: bool) -> list[torch.Tensor]:
        """Run every group, writing its rows of its signature's arena; with ``train`` keep what the
        backward needs. Returns the arenas."""
        g = self.g
        specs, sparams, sattrs, types = g._sig_spec, g._sig_params, g._sig_attrs, g._types
        arenas = []
        for sid, rows in zip(self.arena_sig, self.arena_rows):
            shape, dtype, device, _ = types[g._sig_out[sid]]
            arenas.append(torch.empty((rows, *shape), dtype=dtype, device=device))
        self.srcs.extend(arenas)
        self.src_leaf.extend([False] * self.A)
        arena_rg = [False] * self.A
        self.src_rg.extend(arena_rg)  # filled in below as groups run (readers come later)
        base = self.base
        starts = self.starts.tolist()
        data = self.data
        self.memo: dict = {}
        set_segment_memo(self.memo)
        try:
            return self._forward(train, arenas, specs, sparams, sattrs, starts, data)
        finally:
            set_segment_memo(None)

    def _forward(self, train, arenas, specs, sparams, sattrs, starts, data) -> list[torch.Tensor]:
        self.saved: list[Any] = [None] * self.G
        self.rg: list[bool] = [False] * self.G
        fa = force_autograd
        hoist = self.hoist_plan(train)
        proj: dict[tuple[int, int, int], torch.Tensor] = {}
        for gi in range(self.G):
            sid = self.gsig[gi]
            spec = specs[sid]
            B = self.sizes[gi]
            h = hoist.get(gi)
            Xs, need = self._operands(gi, sid, B, -1 if (h is None or train) else h[0])
            params = sparams[sid]
            attrs = sattrs[sid]
            d = data[starts[gi]:starts[gi + 1]] if spec.index_data else None
            a = self.g_src[gi]
            off = self.g_off[gi]
            out = self.srcs[a][off:off + B]
            rg = train and (any(need) or any(p.requires_grad for p in params))
            if rg and (spec.backward is None or fa):
                with torch.enable_grad():  # copies: a view of an arena would see its later rows' writes
                    Xd = [x.detach().clone().requires_grad_(n) for x, n in zip(Xs, need)]
                    Pd = [p.detach().requires_grad_(p.requires_grad) for p in params]
                    Yg = spec.kernel(Pd, Xd, attrs, d)
                out.copy_(Yg.detach())
                self.saved[gi] = (Xd, need, Yg, Pd, True)
            elif h is not None:
                j, key, kind, ra, rb = h
                P = proj.get(key)
                if P is None:
                    S = self.srcs[key[2]]
                    sl = self.g._types[self.g._sig_in[sid][j]][3]
                    P = proj[key] = spec.project(params, attrs, j, S if sl is None else S[:, sl[0]:sl[1]])
                    self.n_projections += 1
                if kind == VIEW:
                    out.copy_(P[ra:rb])
                else:
                    torch.index_select(P, 0, self.idx[ra:rb], out=out)
                spec.write_rest(params, Xs, attrs, j, out)
                self.n_hoisted += 1
                if rg:
                    self.saved[gi] = (Xs, need, out, None, False)
            else:
                if spec.write is not None:
                    saved = spec.write(params, Xs, attrs, d, out)
                else:
                    out.copy_(spec.kernel(params, Xs, attrs, d))
                    saved = None
                if rg:
                    self.saved[gi] = (Xs, need, out, saved, False)
            if rg:
                self.rg[gi] = True
                self.src_rg[a] = True
        return arenas

    # ------------------------------------------------------------------ backward
    def _used_sources(self) -> set[int]:
        used = set()
        runs = self.runs
        for (_, kind, src, a, b) in self.slots:
            if kind in (VIEW, EXPAND, INDEX):
                used.add(src)
            else:
                used.update(runs[3 * q] for q in range(a, b))
        return used

    def inputs(self) -> list[torch.Tensor]:
        """Tensors requiring grad that the segment reads: parameters, leaves, earlier arenas."""
        g = self.g
        seen: dict[int, torch.Tensor] = {}
        for sid in set(self.gsig):
            for p in g._sig_params[sid]:
                if p.requires_grad:
                    seen.setdefault(id(p), p)
        self.in_src: dict[int, int] = {}  # id(tensor) -> source it is read as
        for s in sorted(self._used_sources()):
            if s < self.base and self.src_rg[s]:
                t = self.srcs[s]
                seen.setdefault(id(t), t)
                self.in_src[id(t)] = s
        self.in_tensors = list(seen.values())
        if self.commit and defer_weight_grads:
            g = self.g
            if g._wpool is None:
                g._wpool = BackwardPool()
            self.pool = g._wpool
            self.serial = self.pool.register([t for t in self.in_tensors if id(t) not in self.in_src])
            self.token_in = g._token
        else:
            self.token_in = None
        return self.in_tensors + ([self.token_in] if self.token_in is not None else [])

    def backward(self, grads: Sequence[torch.Tensor | None]) -> list[torch.Tensor | None]:
        set_segment_memo(getattr(self, "memo", None))
        try:
            return self._backward(grads)
        finally:
            set_segment_memo(None)
            self.memo = {}

    def _backward(self, grads: Sequence[torch.Tensor | None]) -> list[torch.Tensor | None]:
        g = self.g
        specs, sparams, sattrs = g._sig_spec, g._sig_params, g._sig_attrs
        base = self.base
        srcs = self.srcs
        gbuf: dict[int, torch.Tensor] = {}
        owned: set[int] = set()
        for k, gr in enumerate(grads):
            if gr is not None:
                gbuf[base + k] = gr
        pool = self.pool
        routed: list[int] = []
        if pool is not None:
            task = torch._C._current_graph_task_id()
            for s in range(base, base + self.A):  # what later segments left for this segment's arenas
                got = pool.take_grad(s, task)
                if got is not None:
                    t, own = got
                    gr = gbuf.get(s)
                    if gr is not None:
                        t = t.add_(gr) if own else t + gr
                        own = True
                    gbuf[s] = t
                    if own:
                        owned.add(s)
            for s in self.in_src.values():  # earlier arenas: their gradient goes to the pool
                if pool.routes(s):
                    routed.append(s)
                    got = pool.take_grad(s, task)
                    if got is not None:
                        gbuf[s] = got[0]
                        if got[1]:
                            owned.add(s)
        acc = _Accum()
        starts = self.starts.tolist()
        data = self.data

        def target(s: int) -> torch.Tensor:
            t = gbuf.get(s)
            if t is None:
                S = srcs[s]
                t = gbuf[s] = torch.zeros(S.shape, dtype=S.dtype, device=S.device)
                owned.add(s)
            elif s not in owned:
                t = gbuf[s] = t.clone()
                owned.add(s)
            return t

        def put(s: int, rows: slice | None, sl: tuple[int, int] | None, gX: torch.Tensor) -> None:
            S = srcs[s]
            if gX.dtype != S.dtype:
                gX = gX.to(S.dtype)
            if rows is not None and sl is None and s not in gbuf and rows.start == 0 and rows.stop == S.shape[0]:
                gbuf[s] = gX  # covers the whole source: taken as is (copied before any accumulation)
                return
            t = target(s)
            if rows is not None:
                t = t[rows] if sl is None else t[rows, sl[0]:sl[1]]
            elif sl is not None:
                t = t[..., sl[0]:sl[1]]
            t.add_(gX)

        self._put, self._target = put, target
        for gi in range(self.G - 1, -1, -1):
            if not self.rg[gi]:
                continue
            a = self.g_src[gi]
            ga = gbuf.get(a)
            if ga is None:
                continue
            off = self.g_off[gi]
            B = self.sizes[gi]
            gY = ga if (off == 0 and B == ga.shape[0]) else ga[off:off + B]
            sid = self.gsig[gi]
            spec = specs[sid]
            params = sparams[sid]
            Xs, need, Y, saved, fallback = self.saved[gi]
            d = data[starts[gi]:starts[gi + 1]] if spec.index_data else None
            if not fallback:
                if spec.grad_in_place is not None:  # fused activation: gY becomes the pre-activation's gradient
                    ga = target(a)
                    gY = ga if (off == 0 and B == ga.shape[0]) else ga[off:off + B]
                    spec.grad_in_place(Y, gY)
                gXs = spec.backward(params, Xs, sattrs[sid], d, Y, saved, gY, need, _PG(params, acc, a, off, B, gY))
            else:
                Pd = saved
                ins = [t for t in list(Xs) + list(Pd) if t.requires_grad]
                got = torch.autograd.grad(Y, ins, gY, allow_unused=True) if ins else ()
                it = iter(got)
                gXs = [next(it) if x.requires_grad else None for x in Xs]
                for p, pd in zip(params, Pd):
                    if pd.requires_grad:
                        gp = next(it)
                        if gp is not None:
                            acc.add(p, gp)
            self._scatter(gi, sid, gXs, need)
            self.saved[gi] = None  # free what this group kept
        acc.flush(gbuf.get, self.pool, self.serial)
        for s in routed:
            t = gbuf.pop(s, None)
            if t is not None:
                pool.put_grad(s, t, s in owned, task)
        out: list[torch.Tensor | None] = []
        for t in self.in_tensors:
            gp = acc.grad_of(t)
            s = self.in_src.get(id(t))
            gs = gbuf.get(s) if s is not None else None
            if gs is not None:
                gp = gs if gp is None else (gp + gs if gp.is_sparse else gp.add_(gs))
            out.append(gp)
        return out

    def _scatter(self, gi: int, sid: int, gXs, need) -> None:
        """Inverse of the forward gathers of group ``gi``: add each operand gradient to its sources."""
        g = self.g
        in_t = g._sig_in[sid]
        types = g._types
        B = self.sizes[gi]
        flat = self.flat_sig[sid]
        lo, hi = self.slot_lo[gi], self.slot_lo[gi + 1]
        if not flat and g._sig_spec[sid].flat:
            gX = gXs[0]
            gXs = [gX[:, k] for k in range(gX.shape[1])]
            need = [need[0]] * len(gXs)
        put, target = self._put, self._target
        runs = self.runs
        rg = self.src_rg
        for si in range(lo, hi):
            j = si - lo
            gX = gXs[j]
            if gX is None or not need[j]:
                continue
            _, kind, src, a, b = self.slots[si]
            sl = types[in_t[0] if flat else in_t[j]][3]
            if flat:
                gX = gX.reshape(B * len(in_t), *gX.shape[2:])
            if kind == VIEW:
                put(src, slice(a, b), sl, gX)
            elif kind == EXPAND:
                if rg[src]:
                    put(src, None, sl, gX.sum(0))
            elif kind == INDEX:
                if rg[src]:
                    tt = target(src)
                    if sl is not None:
                        tt = tt[:, sl[0]:sl[1]]
                    tt.index_add_(0, self.idx[a:b], gX if gX.dtype == tt.dtype else gX.to(tt.dtype))
            elif kind == RUNS:
                o = 0
                for q in range(a, b):
                    s, r0, r1 = runs[3 * q], runs[3 * q + 1], runs[3 * q + 2]
                    ln = 1 if r0 < 0 else r1 - r0
                    if rg[s]:
                        if r0 < 0:
                            put(s, None, sl, gX[o])
                        else:
                            put(s, slice(r0, r1), sl, gX[o:o + ln])
                    o += ln
            else:  # MULTI
                L = B * len(in_t) if flat else B
                idx = self.idx
                if src >= 0:  # back from member order to the per-source concatenation
                    gX = gX.index_select(0, idx[src + L:src + 2 * L])
                o = 0
                for q in range(a, b):
                    s, i0, n = runs[3 * q], runs[3 * q + 1], runs[3 * q + 2]
                    if rg[s]:
                        part = gX[o:o + n]
                        if self.src_leaf[s]:
                            put(s, None, sl, part.sum(0))
                        else:
                            tt = target(s)
                            if sl is not None:
                                tt = tt[:, sl[0]:sl[1]]
                            tt.index_add_(0, idx[i0:i0 + n], part if part.dtype == tt.dtype else part.to(tt.dtype))
                    o += n

    def finish(self, arenas: Sequence[torch.Tensor]) -> None:
        """Commit the segment's arenas as the graph's sources."""
        if not self.commit:
            return
        g = self.g
        if self.pool is not None:
            self.pool.own(range(self.base, self.base + self.A), self.serial)
        g._sources.extend(arenas)
        g._src_leaf.extend([False] * self.A)
        g._src_rg.extend(self.src_rg[self.base:])
        g._src_rows.extend(self.arena_rows)


class _SegmentFn(torch.autograd.Function):
    """One forward segment as one autograd node (DyNet-style batched backward inside)."""

    @staticmethod
    def forward(ctx, runner: _Runner, *inputs: torch.Tensor):  # type: ignore[override]
        ctx.set_materialize_grads(False)
        ctx.runner = runner
        ctx.n_in = len(inputs)
        outs = runner.forward(train=True)
        nd = [o for o, rg in zip(outs, runner.src_rg[runner.base:]) if not rg]
        if nd:
            ctx.mark_non_differentiable(*nd)
        if runner.pool is None:
            return tuple(outs)
        # the token orders the segments' backwards (see BackwardPool); it carries no value
        return (*outs, torch.empty(0, dtype=outs[0].dtype, device=outs[0].device))

    @staticmethod
    def backward(ctx, *grads: torch.Tensor | None):  # type: ignore[override]
        runner = ctx.runner
        if runner is None:  # a later pass reached this consumed segment through the token chain only
            if any(gr is not None and gr.numel() for gr in grads):
                raise RuntimeError("autobatch: backward through an already back-propagated forward segment "
                                   "(each graph supports one backward pass; build a new Graph per step)")
            return (None,) * (1 + ctx.n_in)
        if runner.pool is not None:
            grads = grads[:-1]  # the token's
        out = runner.backward(grads)
        ctx.runner = None
        return (None, *out) + ((None,) if runner.token_in is not None else ())


def _train_mode(g: "Graph", r: _Runner) -> bool:
    if not torch.is_grad_enabled():
        return False
    for sid in set(r.gsig):
        if any(p.requires_grad for p in g._sig_params[sid]):
            return True
    runs = r.runs
    base = r.base
    rg = r.src_rg
    for (_, kind, src, a, b) in r.slots:
        if kind in (VIEW, EXPAND, INDEX):
            if src < base and rg[src]:
                return True
        elif any(runs[3 * q] < base and rg[runs[3 * q]] for q in range(a, b)):
            return True
    return False


def run_segment(g: "Graph", inp: "PlanInput", order: np.ndarray | None, starts: np.ndarray | None,
                commit: bool = True) -> Segment:
    """Execute the arranged plan of ``inp``; with ``commit`` store the values in the graph."""
    seg = Segment(inp.first, inp.first + inp.n, depth=inp.depth)
    if order is None or len(order) == 0:
        return seg
    r = _Runner(g, inp, order, starts, commit)
    if _train_mode(g, r):
        ins = r.inputs()
        outs = list(_SegmentFn.apply(r, *ins))
        if r.pool is not None:
            g._token = outs.pop()
        r.srcs[r.base:] = outs
    else:
        outs = r.forward(train=False)
    r.finish(outs)
    seg.order = r.gorder
    seg.starts = starts
    seg.gathers = r.gathers
    seg.rows_copied = r.rows_copied
    seg.hoisted = r.n_hoisted
    seg.projections = r.n_projections
    lo = r.slot_lo
    names = [KIND_NAMES[sl[1]] for sl in r.slots]
    seg.group_gathers = [tuple(names[lo[k]:lo[k + 1]]) for k in range(r.G)]
    return seg


def gather_values(g: "Graph", nodes: Sequence[int]) -> torch.Tensor:
    """Differentiable ``(len(nodes), *shape)`` stack of executed (non-leaf) nodes' values."""
    idx = np.asarray(nodes, dtype=np.int64)
    src = g._vsrc[idx]
    row = g._vrow[idx]
    if (src < 0).any():
        raise RuntimeError("gather_values: some nodes have not been executed")
    s0 = int(src[0])
    if (src == s0).all():
        S = g._sources[s0]
        r0 = int(row[0])
        if (np.diff(row) == 1).all():
            return S if (r0 == 0 and len(row) == S.shape[0]) else S[r0:r0 + len(row)]
        return S.index_select(0, torch.from_numpy(row).to(S.device))
    uniq, first_pos = np.unique(src, return_index=True)
    uniq = uniq[np.argsort(first_pos)]
    offs = {}
    parts = []
    off = 0
    for s in uniq.tolist():
        offs[s] = off
        parts.append(g._sources[s])
        off += parts[-1].shape[0]
    cat = torch.cat(parts, 0)
    pos = np.fromiter((offs[s] for s in src.tolist()), dtype=np.int64, count=len(src)) + row
    return cat.index_select(0, torch.from_numpy(pos).to(cat.device))
