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
from xflow.rewrites._graph import Editor, GraphView

__all__ = [
    "ReassociateMatMulRight", "ReassociateMatMulLeft", "FactorMatMulAdd", "ConcatMatMulAdd",
    "reassoc_right_rule", "reassoc_left_rule", "factor_matmul_add_rule", "concat_matmul_add_rule",
]


def _rows(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape[:-1])) if len(shape) > 1 else 1


def _chain_cost(view: GraphView, a: str, b: str, c: str) -> tuple[int, int] | str:
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


def _inner_mm(view: GraphView, outer, operand_index: int):
    p = view.producer.get(outer.input[operand_index])
    return p if p is not None and p.op_type == "MatMul" else None


class ReassociateMatMulRight(Rule):
    """``(A·B)·C -> A·(B·C)`` when cheaper. Location: ``(inner, outer)``."""

    name = "matmul_reassoc_right"

    def _sites(self, view: GraphView) -> Iterable[Location]:
        for n in view.nodes:
            if n.op_type == "MatMul" and _inner_mm(view, n, 0) is not None:
                yield Location.of((_inner_mm(view, n, 0).name, n.name))

    def _check(self, view: GraphView, loc: Location) -> str | None:
        inner, outer = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        if outer.input[0] != inner.output[0]:
            return "outer MatMul does not take the inner product as left operand"
        if view.sole_consumer(inner.output[0]) is not outer:
            return "inner product has other consumers"
        cost = _chain_cost(view, inner.input[0], inner.input[1], outer.input[1])
        if isinstance(cost, str):
            return cost
        if cost[1] >= cost[0]:
            return f"A·(B·C) costs {cost[1]} multiply-adds, not fewer than (A·B)·C's {cost[0]}"
        return None

    def _rewrite(self, view: GraphView, loc: Location, ed: Editor) -> None:
        inner, outer = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        a, b, c = inner.input[0], inner.input[1], outer.input[1]
        cb, cc = view.const(b), view.const(c)
        if cb is not None and cc is not None:
            bc = ed.add_initializer(f"{outer.name}/BC", (cb.astype(np.float64) @ cc.astype(np.float64)).astype(cb.dtype))
        else:
            bc = ed.fresh(f"{outer.name}/BC")
            ed.add_node("MatMul", [b, c], [bc], name=f"{outer.name}/BC")
        ed.remove(inner, outer)
        ed.add_node("MatMul", [a, bc], [outer.output[0]], name=outer.name)


class ReassociateMatMulLeft(Rule):
    """``A·(B·C) -> (A·B)·C`` when cheaper. Location: ``(inner, outer)``."""

    name = "matmul_reassoc_left"

    def _sites(self, view: GraphView) -> Iterable[Location]:
        for n in view.nodes:
            if n.op_type == "MatMul" and _inner_mm(view, n, 1) is not None:
                yield Location.of((_inner_mm(view, n, 1).name, n.name))

    def _check(self, view: GraphView, loc: Location) -> str | None:
        inner, outer = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        if outer.input[1] != inner.output[0]:
            return "outer MatMul does not take the inner product as right operand"
        if view.sole_consumer(inner.output[0]) is not outer:
            return "inner product has other consumers"
        cost = _chain_cost(view, outer.input[0], inner.input[0], inner.input[1])
        if isinstance(cost, str):
            return cost
        if view.is_const(inner.input[0]) and view.is_const(inner.input[1]):
            return "B·C is a constant product (fold it instead)"
        if cost[0] >= cost[1]:
            return f"(A·B)·C costs {cost[0]} multiply-adds, not fewer than A·(B·C)'s {cost[1]}"
        return None

    def _rewrite(self, view: GraphView, loc: Location, ed: Editor) -> None:
        inner, outer = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        ab = ed.fresh(f"{outer.name}/AB")
        ed.add_node("MatMul", [outer.input[0], inner.input[0]], [ab], name=f"{outer.name}/AB")
        ed.add_node("MatMul", [ab, inner.input[1]], [outer.output[0]], name=outer.name)
        ed.remove(inner, outer)


def _add_of_matmuls(view: GraphView, add):
    if add.op_type != "Add":
        return None
    ps = [view.producer.get(t) for t in add.input]
    if len(ps) != 2 or any(p is None or p.op_type != "MatMul" for p in ps) or ps[0] is ps[1]:
        return None
    return ps


def _sole_into(view: GraphView, mms, add) -> str | None:
    for m in mms:
        if view.sole_consumer(m.output[0]) is not add:
            return f"{m.name}'s output has other consumers than the Add"
    return None


class FactorMatMulAdd(Rule):
    """``A·B + A·C -> A·(B + C)`` (B, C constant). Location: ``(add,)``."""

    name = "factor_matmul_add"

    def _sites(self, view: GraphView) -> Iterable[Location]:
        for n in view.nodes:
            if _add_of_matmuls(view, n) is not None:
                yield Location.of((n.name,))

    def _check(self, view: GraphView, loc: Location) -> str | None:
        add = view.node(loc.nodes[0])
        m1, m2 = _add_of_matmuls(view, add)
        if m1.input[0] != m2.input[0]:
            return "MatMuls have different left operands"
        b, c = view.const(m1.input[1]), view.const(m2.input[1])
        if b is None or c is None:
            return "right operands are not both constant"
        if b.shape != c.shape or b.dtype != c.dtype:
            return "right operands differ in shape or dtype"
        return _sole_into(view, (m1, m2), add)

    def _rewrite(self, view: GraphView, loc: Location, ed: Editor) -> None:
        add = view.node(loc.nodes[0])
        m1, m2 = _add_of_matmuls(view, add)
        s = view.const(m1.input[1]) + view.const(m2.input[1])
        ed.remove(add, m1, m2)
        ed.add_node("MatMul", [m1.input[0], ed.add_initializer(f"{add.name}/W", s)], [add.output[0]],
                    name=f"{add.name}/factored")


class ConcatMatMulAdd(Rule):
    """``X·W + H·U -> Concat(X, H)·[W; U]`` (W, U constant 2-D). Location: ``(add,)``."""

    name = "concat_matmul_add"

    def _sites(self, view: GraphView) -> Iterable[Location]:
        for n in view.nodes:
            if _add_of_matmuls(view, n) is not None:
                yield Location.of((n.name,))

    def _check(self, view: GraphView, loc: Location) -> str | None:
        add = view.node(loc.nodes[0])
        m1, m2 = _add_of_matmuls(view, add)
        if m1.input[0] == m2.input[0]:
            return "MatMuls share the left operand (use factor_matmul_add)"
        w, u = view.const(m1.input[1]), view.const(m2.input[1])
        if w is None or u is None:
            return "right operands are not both constant"
        if w.ndim != 2 or u.ndim != 2 or w.shape[1] != u.shape[1] or w.dtype != u.dtype:
            return "right operands are not 2-D with equal columns and dtype"
        sx, sh = view.shape(m1.input[0]), view.shape(m2.input[0])
        if sx is None or sh is None:
            return "left operand shapes are not static"
        if sx[:-1] != sh[:-1]:
            return f"left operands differ in leading dims ({sx} vs {sh}); the Add would broadcast"
        return _sole_into(view, (m1, m2), add)

    def _rewrite(self, view: GraphView, loc: Location, ed: Editor) -> None:
        add = view.node(loc.nodes[0])
        m1, m2 = _add_of_matmuls(view, add)
        w = np.concatenate([view.const(m1.input[1]), view.const(m2.input[1])], axis=0)
        cat = ed.fresh(f"{add.name}/xh")
        ed.add_node("Concat", [m1.input[0], m2.input[0]], [cat], name=f"{add.name}/concat", axis=-1)
        ed.remove(add, m1, m2)
        ed.add_node("MatMul", [cat, ed.add_initializer(f"{add.name}/W", w)], [add.output[0]],
                    name=f"{add.name}/matmul")


reassoc_right_rule = ReassociateMatMulRight()
reassoc_left_rule = ReassociateMatMulLeft()
factor_matmul_add_rule = FactorMatMulAdd()
concat_matmul_add_rule = ConcatMatMulAdd()
