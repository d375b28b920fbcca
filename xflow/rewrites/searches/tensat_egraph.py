"""TENSAT's e-graph as extraction sees it: egglog's serialized e-graph (:class:`EGraphView`), the
time budget split into phases (:class:`Budget`), and TENSAT's cycle filtering (``get_cycles``,
``remove_cycles_by_add_to_blacklist`` in uwplse/tensat ``src/rewrites.rs``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from xflow.errors import XflowError

__all__ = ["ENode", "EGraphView", "Budget", "OutOfTime", "root_class", "tensor_children", "list_items",
           "node_key", "note_first_seen", "find_cycles", "break_cycles"]


@dataclass
class ENode:
    """One e-node of the serialized e-graph: its id, constructor, class, child classes, primitives."""

    id: str
    op: str
    cls: str
    children: list[str]          # child e-class ids (T or TL or primitive classes)
    prims: list[Any]             # primitive arguments (strings, ints) in order


class EGraphView:
    """The parts of egglog's serialized e-graph that extraction needs."""

    def __init__(self, js: dict[str, Any]):
        nodes = js["nodes"]
        self.prim: dict[str, Any] = {}
        for nid, n in nodes.items():
            if nid.startswith("primitive-"):
                op = n["op"]
                self.prim[nid] = json.loads(op) if op.startswith('"') else int(op) if op.lstrip("-").isdigit() else op
        self.classes: dict[str, list[ENode]] = {}
        self.rank: dict[str, int] = {}
        self.dims: dict[str, dict[int, int]] = {}
        cls_of = {nid: n["eclass"] for nid, n in nodes.items()}
        self.prim_of_class = {n["eclass"]: self.prim[nid] for nid, n in nodes.items() if nid in self.prim}
        for nid, n in nodes.items():
            op = n["op"]
            if nid.startswith("primitive-"):
                continue
            if op == "rank":
                self.rank[cls_of[n["children"][0]]] = int(self.prim_of_class[n["eclass"]])
                continue
            if op == "dim":
                c = cls_of[n["children"][0]]
                self.dims.setdefault(c, {})[int(self.prim[n["children"][1]])] = int(self.prim_of_class[n["eclass"]])
                continue
            children, prims = [], []
            for ch in n["children"]:
                if ch.startswith("primitive-"):
                    prims.append(self.prim[ch])
                else:
                    children.append(cls_of[ch])
            self.classes.setdefault(n["eclass"], []).append(ENode(nid, op, n["eclass"], children, prims))
        self.out_shapes: dict[str, dict[int, tuple | None]] = {}
        for c2, ns in self.classes.items():
            for m in ns:
                if m.op == "Out" and m.children:
                    self.out_shapes.setdefault(m.children[0], {})[int(m.prims[0])] = None
        for c2, ns in self.classes.items():
            for m in ns:
                if m.op == "Out" and m.children:
                    self.out_shapes[m.children[0]][int(m.prims[0])] = self.shape(c2)

    def shape(self, cls: str) -> tuple[int, ...] | None:
        r = self.rank.get(cls)
        if r is None:
            return None
        d = self.dims.get(cls, {})
        if any(i not in d for i in range(r)):
            return None
        return tuple(d[i] for i in range(r))

    def size(self) -> int:
        return sum(len(v) for v in self.classes.values())


# ---------------------------------------------------------------------------------------------
# the search
# ---------------------------------------------------------------------------------------------
class Budget:
    """The one time budget of a search, split TENSAT's way into phases (``--n_sec`` for saturation,
    ``--ilp_time_sec`` for the ILP), plus a reserve for rebuilding and verifying the result.

    ``clock`` is injectable so that a test can count polls instead of seconds (deterministic)."""

    def __init__(self, total_s: float, clock: Callable[[], float], saturation_share: float, reserve_share: float):
        self.clock = clock
        self.t0 = clock()
        self.total_s = total_s
        self.saturation_end = self.t0 + saturation_share * total_s
        self.extraction_end = self.t0 + (1.0 - reserve_share) * total_s
        self.polls = 0

    def now(self) -> float:
        self.polls += 1
        return self.clock()

    def elapsed(self) -> float:
        return self.now() - self.t0

    def left(self, end: float) -> float:
        return end - self.now()


class OutOfTime(Exception):
    """An extraction phase passed its deadline (the caller falls back to a cheaper answer)."""


def root_class(ev: EGraphView) -> str:
    """The class holding the ``Root`` e-node (the graph outputs)."""
    for cls, ns in ev.classes.items():
        if any(n.op == "Root" for n in ns):
            return cls
    raise XflowError("tensat: no root in the e-graph")


def tensor_children(ev: EGraphView, n: ENode) -> list[str]:
    """Child T-classes of ``n`` (TL lists flattened)."""
    if n.op in ("NL", "Root"):
        return list_items(ev, n.children[0])
    if n.op in ("TCons", "TNil"):
        return []
    return list(n.children)


def list_items(ev: EGraphView, cls: str) -> list[str]:
    """The element classes of the ``TCons``/``TNil`` list in class ``cls``."""
    items = []
    seen = set()
    while cls not in seen:
        seen.add(cls)
        n = next((x for x in ev.classes.get(cls, []) if x.op == "TCons"), None)
        if n is None:
            break
        items.append(n.children[0])
        cls = n.children[1]
    return items


def node_key(n: ENode) -> tuple:
    """An e-node by structure (constructor, primitives, child classes)."""
    return (n.op, tuple(map(str, n.prims)), tuple(n.children))


def note_first_seen(ev: EGraphView, first_seen: dict[tuple, int], it: int) -> None:
    """Record the iteration each e-node (by structure: serialized ids are not stable) first appeared."""
    for ns in ev.classes.values():
        for n in ns:
            first_seen.setdefault(node_key(n), it)


def find_cycles(ev: EGraphView, root: str, blacklist: set[str], bud: Budget, end: float) -> list[list[ENode]]:
    """Cycles reachable from ``root`` through non-blacklisted e-nodes (TENSAT ``get_cycles``: one
    DFS, a cycle per back edge), iteratively (no recursion limit); polls the budget every 512 steps."""
    state: dict[str, int] = {root: 1}
    path: list[ENode] = []           # the e-node taken out of each class on the stack
    depth_of: dict[str, int] = {root: 0}  # class -> its position on the stack
    cycles: list[list[ENode]] = []
    stack = [(root, iter(ev.classes.get(root, [])), None, None)]
    steps = 0
    while stack:
        cls, nodes, cur, kids = stack[-1]
        steps += 1
        if steps % 512 == 0 and bud.left(end) <= 0:
            raise OutOfTime("cycle filtering")
        if kids is None:
            cur = next(nodes, None)
            while cur is not None and cur.id in blacklist:
                cur = next(nodes, None)
            if cur is None:
                state[cls] = 2
                depth_of.pop(cls, None)
                stack.pop()
                if path:
                    path.pop()
                continue
            kids = iter(tensor_children(ev, cur))
            stack[-1] = (cls, nodes, cur, kids)
        ch = next(kids, None)
        if ch is None:
            stack[-1] = (cls, nodes, None, None)
            continue
        st = state.get(ch)
        if st == 1:
            d = depth_of[ch]
            cycles.append(path[d:] + [cur])
        elif st is None:
            state[ch] = 1
            depth_of[ch] = len(stack)
            path.append(cur)
            stack.append((ch, iter(ev.classes.get(ch, [])), None, None))
    return cycles


def break_cycles(ev: EGraphView, root: str, original: set[str], first_seen: dict[tuple, int],
                  bud: Budget, end: float, keep: set[str] = frozenset()) -> set[str]:
    """TENSAT's ``remove_cycles_by_add_to_blacklist``: blacklist the newest e-node of each cycle
    (input e-nodes have no order and are never picked) until none is left.

    egglog runs a whole iteration at once, so e-nodes of one iteration have no order among them
    (TENSAT orders by rule application); among a cycle's new e-nodes one not in ``keep`` (the
    acyclic greedy extraction) is preferred, then the newest iteration, then the serialized id.
    Picking by serialized id alone blacklisted SqueezeNet's useful ``Relu(Concat)`` e-nodes."""
    blacklist: set[str] = set()
    while True:
        cycles = find_cycles(ev, root, blacklist, bud, end)
        if not cycles:
            return blacklist
        for cyc in cycles:
            if any(n.id in blacklist for n in cyc):
                continue
            new = [n for n in cyc if n.id not in original]
            if not new:
                raise XflowError("tensat: a cycle of input e-nodes (the input graph is cyclic?)")
            newest = max(new, key=lambda n: (n.id not in keep, first_seen.get(node_key(n), 0), _id_num(n.id), n.id))
            blacklist.add(newest.id)


def _id_num(nid: str) -> int:
    parts = nid.split("-")
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else 0
