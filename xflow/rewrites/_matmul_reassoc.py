r"""Reassociate MatMul chains to the cheaper order; factor and concatenate sums of MatMuls.

Reassociation (2-D right operands ``B: K×N``, ``C: N×P``; ``A: …×M×K``, ``M`` = all leading rows)::

    MatMul(MatMul(A, B), C)  ->  MatMul(A, MatMul(B, C))   when  K·N·P + M·K·P < M·K·N + M·N·P
    MatMul(A, MatMul(B, C))  ->  MatMul(MatMul(A, B), C)   when the reverse inequality holds

If ``B`` and ``C`` are both constant, ``B·C`` is precomputed into one initializer (then the
saving is ``M·K·N + M·N·P - M·K·P`` multiply-adds per run). A chain whose intermediate result is
also used elsewhere does not match (the old product would still be computed).

Factoring and concatenation of sums (NASRNN-style cells: ``x·W + h·U``)::

    Add(MatMul(A, B), MatMul(A, C))  ->  MatMul(A, B + C)                       (B, C constant)
    Add(MatMul(X, W), MatMul(H, U))  ->  MatMul(Concat(X, H, axis=-1), [W; U])  (W, U constant 2-D)

The second form is A·B + C·D = [A‖C]·[B; D]: one GEMM with a longer reduction instead of two
GEMMs and an Add.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from xflow.rewrites._base import Location, Rule
from xflow.graphs.edit import Editor
from xflow.graphs.ir import Graph, ins, outs

__all__ = [
    "ReassociateMatMulRight", "ReassociateMatMulLeft", "FactorMatMulAdd", "ConcatMatMulAdd",
    "reassoc_right_rule", "reassoc_left_rule", "factor_matmul_add_rule", "concat_matmul_add_rule",
]


def _rows(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape[:-1])) if len(shape) > 1 else 1


def _chain_cost(view: Graph, a: str, b: str, c: str) -> tuple[int, int] | str:
    """Multiply-adds of ``(A·B)·C`` and ``A·(B·C)`` (B·C free if both constant) or a reason."""
    sa, sb, sc = view.shape(a), view.shape(b), view.shape(c)
    if sa is None or sb is None or sc is None:
        return "operand shapes are not static"
    if len(sb) != 2 or len(sc) != 2 or len(sa) < 1:
        return "B and C must be 2-D"
    m, k = _rows(sa), sa[-1]
    if sb[0] != k or sc[0] != sb[1]:
        return "inner dimensions do not agree"
    n, p = sb[1], sc[1]
    left = m * k * n + m * n * p
    bc = 0 if (view.is_const(b) and view.is_const(c)) else k * n * p
    right = bc + m * k * p
    return left, right


def _inner_mm(view: Graph, outer, operand_index: int):
    p = view.producer(ins(outer)[operand_index])
    return p if p is not None and p.op_type == "MatMul" else None


class ReassociateMatMulRight(Rule):
    """``(A·B)·C -> A·(B·C)`` when cheaper. Location: ``(inner, outer)``."""

    name = "matmul_reassoc_right"

    def _sites(self, view: Graph) -> Iterable[Location]:
        for n in view.nodes:
            if n.op_type == "MatMul" and _inner_mm(view, n, 0) is not None:
                yield Location.of((_inner_mm(view, n, 0).name, n.name))

    def _check(self, view: Graph, loc: Location) -> str | None:
        inner, outer = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        if ins(outer)[0] != outs(inner)[0]:
            return "outer MatMul does not take the inner product as left operand"
        if view.sole_consumer(outs(inner)[0]) is not outer:
            return "inner product has other consumers"
        cost = _chain_cost(view, ins(inner)[0], ins(inner)[1], ins(outer)[1])
        if isinstance(cost, str):
            return cost
        if cost[1] >= cost[0]:
            return f"A·(B·C) costs {cost[1]} multiply-adds, not fewer than (A·B)·C's {cost[0]}"
        return None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        inner, outer = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        a, b, c = ins(inner)[0], ins(inner)[1], ins(outer)[1]
        cb, cc = view.const(b), view.const(c)
        if cb is not None and cc is not None:
            bc = ed.add_initializer(f"{outer.name}/BC", (cb.astype(np.float64) @ cc.astype(np.float64)).astype(cb.dtype))
        else:
            bc = ed.fresh(f"{outer.name}/BC")
            ed.add_node("MatMul", [b, c], [bc], name=f"{outer.name}/BC")
        ed.remove(inner, outer)
        ed.add_node("MatMul", [a, bc], [outs(outer)[0]], name=outer.name)


class ReassociateMatMulLeft(Rule):
    """``A·(B·C) -> (A·B)·C`` when cheaper. Location: ``(inner, outer)``."""

    name = "matmul_reassoc_left"

    def _sites(self, view: Graph) -> Iterable[Location]:
        for n in view.nodes:
            if n.op_type == "MatMul" and _inner_mm(view, n, 1) is not None:
                yield Location.of((_inner_mm(view, n, 1).name, n.name))

    def _check(self, view: Graph, loc: Location) -> str | None:
        inner, outer = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        if ins(outer)[1] != outs(inner)[0]:
            return "outer MatMul does not take the inner product as right operand"
        if view.sole_consumer(outs(inner)[0]) is not outer:
            return "inner product has other consumers"
        cost = _chain_cost(view, ins(outer)[0], ins(inner)[0], ins(inner)[1])
        if isinstance(cost, str):
            return cost
        if view.is_const(ins(inner)[0]) and view.is_const(ins(inner)[1]):
            return "B·C is a constant product (fold it instead)"
        if cost[0] >= cost[1]:
            return f"(A·B)·C costs {cost[0]} multiply-adds, not fewer than A·(B·C)'s {cost[1]}"
        return None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        inner, outer = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        ab = ed.fresh(f"{outer.name}/AB")
        ed.add_node("MatMul", [ins(outer)[0], ins(inner)[0]], [ab], name=f"{outer.name}/AB")
        ed.add_node("MatMul", [ab, ins(inner)[1]], [outs(outer)[0]], name=outer.name)
        ed.remove(inner, outer)


def _add_of_matmuls(view: Graph, add):
    if add.op_type != "Add":
        return None
    ps = [view.producer(t) for t in ins(add)]
    if len(ps) != 2 or any(p is None or p.op_type != "MatMul" for p in ps) or ps[0] is ps[1]:
        return None
    return ps


def _sole_into(view: Graph, mms, add) -> str | None:
    for m in mms:
        if view.sole_consumer(outs(m)[0]) is not add:
            return f"{m.name}'s output has other consumers than the Add"
    return None


class FactorMatMulAdd(Rule):
    """``A·B + A·C -> A·(B + C)`` (B, C constant). Location: ``(add,)``."""

    name = "factor_matmul_add"

    def _sites(self, view: Graph) -> Iterable[Location]:
        for n in view.nodes:
            if _add_of_matmuls(view, n) is not None:
                yield Location.of((n.name,))

    def _check(self, view: Graph, loc: Location) -> str | None:
        add = view.node(loc.nodes[0])
        m1, m2 = _add_of_matmuls(view, add)
        if ins(m1)[0] != ins(m2)[0]:
            return "MatMuls have different left operands"
        b, c = view.const(ins(m1)[1]), view.const(ins(m2)[1])
        if b is None or c is None:
            return "right operands are not both constant"
        if b.shape != c.shape or b.dtype != c.dtype:
            return "right operands differ in shape or dtype"
        return _sole_into(view, (m1, m2), add)

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        add = view.node(loc.nodes[0])
        m1, m2 = _add_of_matmuls(view, add)
        s = view.const(ins(m1)[1]) + view.const(ins(m2)[1])
        ed.remove(add, m1, m2)
        ed.add_node("MatMul", [ins(m1)[0], ed.add_initializer(f"{add.name}/W", s)], [outs(add)[0]],
                    name=f"{add.name}/factored")


class ConcatMatMulAdd(Rule):
    """``X·W + H·U -> Concat(X, H)·[W; U]`` (W, U constant 2-D). Location: ``(add,)``."""

    name = "concat_matmul_add"

    def _sites(self, view: Graph) -> Iterable[Location]:
        for n in view.nodes:
            if _add_of_matmuls(view, n) is not None:
                yield Location.of((n.name,))

    def _check(self, view: Graph, loc: Location) -> str | None:
        add = view.node(loc.nodes[0])
        m1, m2 = _add_of_matmuls(view, add)
        if ins(m1)[0] == ins(m2)[0]:
            return "MatMuls share the left operand (use factor_matmul_add)"
        w, u = view.const(ins(m1)[1]), view.const(ins(m2)[1])
        if w is None or u is None:
            return "right operands are not both constant"
        if w.ndim != 2 or u.ndim != 2 or w.shape[1] != u.shape[1] or w.dtype != u.dtype:
            return "right operands are not 2-D with equal columns and dtype"
        sx, sh = view.shape(ins(m1)[0]), view.shape(ins(m2)[0])
        if sx is None or sh is None:
            return "left operand shapes are not static"
        if sx[:-1] != sh[:-1]:
            return f"left operands differ in leading dims ({sx} vs {sh}); the Add would broadcast"
        return _sole_into(view, (m1, m2), add)

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        add = view.node(loc.nodes[0])
        m1, m2 = _add_of_matmuls(view, add)
        w = np.concatenate([view.const(ins(m1)[1]), view.const(ins(m2)[1])], axis=0)
        cat = ed.fresh(f"{add.name}/xh")
        ed.add_node("Concat", [ins(m1)[0], ins(m2)[0]], [cat], name=f"{add.name}/concat", axis=-1)
        ed.remove(add, m1, m2)
        ed.add_node("MatMul", [cat, ed.add_initializer(f"{add.name}/W", w)], [outs(add)[0]],
                    name=f"{add.name}/matmul")


reassoc_right_rule = ReassociateMatMulRight()
reassoc_left_rule = ReassociateMatMulLeft()
factor_matmul_add_rule = FactorMatMulAdd()
concat_matmul_add_rule = ConcatMatMulAdd()
