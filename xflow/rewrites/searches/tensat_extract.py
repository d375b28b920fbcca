r"""Extraction from a TENSAT e-graph: egg's greedy ``Extractor`` (tree costs), the DAG cost of an
extraction, and TENSAT's ILP (uwplse/tensat ``extractor/extract.py``) with SciPy's HiGHS ``milp``:
binary :math:`x_i` per e-node, the root class picked, a picked node's child classes picked,
blacklisted nodes fixed to 0, minimise :math:`\sum_i c_i x_i`; with order variables
:math:`t_m \in [0, 1]` and :math:`t_{g(i)} - t_m - \epsilon + A (1 - x_i) \ge 0` when cycles remain.
"""
from __future__ import annotations

import numpy as np

from xflow.rewrites.searches.tensat_egraph import Budget, EGraphView, ENode, OutOfTime

__all__ = ["greedy_extract", "dag_cost", "ilp_extract"]


def greedy_extract(ev: EGraphView, costs: dict[str, float], blacklist: set[str], bud: Budget,
            end: float) -> dict[str, ENode]:
    """egg's ``Extractor``: per class the node minimising its cost plus its children's tree costs,
    to a fixpoint (a class is revisited only when a child class got cheaper: a worklist over the
    parents). With non-negative costs and strict improvement the choice has no cycle."""
    parents: dict[str, list[ENode]] = {}
    for ns in ev.classes.values():
        for n in ns:
            if n.id in blacklist:
                continue
            for c in set(n.children):
                parents.setdefault(c, []).append(n)
    best: dict[str, tuple[float, ENode]] = {}
    todo = [n for ns in ev.classes.values() for n in ns if n.id not in blacklist and not n.children]
    steps = 0
    while todo:
        nxt: list[ENode] = []
        seen: set[str] = set()
        for n in todo:
            steps += 1
            if steps % 4096 == 0 and bud.left(end) <= 0:
                raise OutOfTime("greedy extraction")
            if any(c not in best for c in n.children):
                continue
            total = costs.get(n.id, 0.0) + sum(best[c][0] for c in n.children)
            if n.cls not in best or total < best[n.cls][0] - 1e-12:
                best[n.cls] = (total, n)
                for p in parents.get(n.cls, ()):
                    if p.id not in seen:
                        seen.add(p.id)
                        nxt.append(p)
        todo = nxt
    return {c: n for c, (_, n) in best.items()}


def dag_cost(ev: EGraphView, root: str, choice: dict[str, ENode], costs: dict[str, float]) -> float:
    """Cost of an extraction as a graph: each picked e-node reachable from the root counted once
    (what the rebuilt ONNX graph costs; tree costs count shared subterms repeatedly)."""
    seen: set[str] = set()
    stack, total = [root], 0.0
    while stack:
        c = stack.pop()
        if c in seen or c not in choice:
            continue
        seen.add(c)
        n = choice[c]
        total += costs.get(n.id, 0.0)
        stack.extend(n.children)
    return total


def ilp_extract(ev: EGraphView, root: str, costs: dict[str, float], blacklist: set[str], time_s: float,
         order: bool) -> tuple[dict[str, ENode] | None, str]:
    """TENSAT's ILP (``extractor/extract.py``) with SciPy's HiGHS ``milp`` under ``time_s``;
    ``(None, status)`` when HiGHS has no feasible solution in that time."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    nodes = [n for ns in ev.classes.values() for n in ns]
    idx = {n.id: i for i, n in enumerate(nodes)}
    cls_list = list(ev.classes)
    cidx = {c: i for i, c in enumerate(cls_list)}
    members: dict[str, list[int]] = {c: [idx[n.id] for n in ns] for c, ns in ev.classes.items()}
    nx, nt = len(nodes), (len(cls_list) if order else 0)
    ri: list[int] = []
    ci: list[int] = []
    vals: list[float] = []
    lo: list[float] = []
    hi: list[float] = []

    def row(entries: dict[int, float], lo_v: float, hi_v: float) -> None:
        r = len(lo)
        for j, v in entries.items():
            ri.append(r), ci.append(j), vals.append(v)
        lo.append(lo_v), hi.append(hi_v)

    row({i: 1.0 for i in members[root]}, 1.0, 1.0)  # the root is picked
    eps = 1.0 / (10 * max(1, len(cls_list)))
    A = 2.0
    for n in nodes:
        i = idx[n.id]
        for c in set(n.children):
            if c not in members:
                continue
            r1 = {j: 1.0 for j in members[c]}
            r1[i] = r1.get(i, 0.0) - 1.0
            row(r1, 0.0, np.inf)  # a picked node's child class is picked
            if order:
                # t_g(i) - t_c - eps + A (1 - x_i) >= 0  ->  t_g - t_c - A x_i >= eps - A
                r2 = {nx + cidx[n.cls]: 1.0}
                r2[nx + cidx[c]] = r2.get(nx + cidx[c], 0.0) - 1.0
                r2[i] = r2.get(i, 0.0) - A
                row(r2, eps - A, np.inf)
    mat = coo_matrix((vals, (ri, ci)), shape=(len(lo), nx + nt)).tocsr()
    c_vec = np.array([costs.get(n.id, 0.0) for n in nodes] + [0.0] * nt)
    c_vec[:nx] += 1e-9  # prefer fewer nodes among equal costs (keeps the extraction minimal)
    ub = np.ones(nx + nt)
    for b in blacklist:
        if b in idx:
            ub[idx[b]] = 0.0
    integrality = np.array([1] * nx + [0] * nt)
    res = milp(c_vec, constraints=LinearConstraint(mat, lo, hi), integrality=integrality,
               bounds=Bounds(np.zeros(nx + nt), ub), options={"time_limit": max(0.01, time_s), "disp": False})
    if res.x is None:
        return None, str(res.message)
    choice: dict[str, ENode] = {}
    for n in nodes:
        if res.x[idx[n.id]] > 0.5:
            prev = choice.get(n.cls)
            if prev is None or costs.get(n.id, 0.0) < costs.get(prev.id, 0.0):
                choice[n.cls] = n
    return choice, str(res.message)
