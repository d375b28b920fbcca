"""Move elementwise unary ops (Relu, Sigmoid, Tanh, …) across Concat and Split.

For an elementwise ``u`` (same op, same attributes, same constant extra inputs such as Clip's
bounds), ``u`` commutes with concatenation and slicing::

    Concat(u(x1), …, u(xk))  ->  u(Concat(x1, …, xk))       (k activations become one)
    u(Concat(x1, …, xk))     ->  Concat(u(x1), …, u(xk))
    Split(u(x))[i]           ->  u(Split(x)[i])
    u(Split(x)[1]), …, u(Split(x)[k]) ->  Split(u(x))[i]     (k activations become one)

Each ``u(xi)`` being moved must have the Concat (or Split) as its only consumer, so no work is
duplicated behind the search's back.

Binary elementwise ops ``⊙`` (Add, Sub, Mul, Div, Max, Min) commute with a pair of identical
Splits of equally shaped tensors (NASRNN gates ``t_i = x·W_i + h·U_i`` after the sibling merges)::

    ⊙(Split(a)[i], Split(b)[i]) for every i  ->  Split(⊙(a, b))[i]
"""
from __future__ import annotations

from typing import Iterable

import onnx_ir as ir

from xflow.rewrites._base import Location, Rule
from xflow.graphs.edit import Editor
from xflow.graphs.ir import Graph, attrs, ins, outs
from xflow.rewrites._base import UNARY_ELEMENTWISE

__all__ = [
    "UnaryAfterConcat", "UnaryBeforeConcat", "UnaryAfterSplit", "UnaryBeforeSplit",
    "unary_after_concat_rule", "unary_before_concat_rule", "unary_after_split_rule",
    "unary_before_split_rule", "BinaryBeforeSplit", "binary_before_split_rule",
]

_BINARY = frozenset({"Add", "Sub", "Mul", "Div", "Max", "Min"})


def _unary_key(view: Graph, node: ir.Node | None) -> tuple | str:
    """Identity of an elementwise unary op (op, attrs, constant extra inputs) or a reason."""
    if node is None:
        return "input is not produced by a node"
    if node.op_type not in UNARY_ELEMENTWISE or node.domain not in ("", "ai.onnx"):
        return f"{node.name} ({node.op_type}) is not an elementwise unary op"
    extra = []
    for t in list(ins(node))[1:]:
        if not t:
            extra.append(None)
            continue
        c = view.const(t)
        if c is None:
            return f"{node.name} has a non-constant operand {t!r}"
        extra.append((c.dtype.str, c.shape, c.tobytes()))
    return (node.op_type, tuple(sorted(attrs(node).items())), tuple(extra))


def _same_unary(view: Graph, nodes: list) -> str | None:
    keys = [_unary_key(view, n) for n in nodes]
    for k in keys:
        if isinstance(k, str):
            return k
    if len(set(keys)) != 1:
        return "inputs come from different unary ops or attributes"
    return None


class UnaryAfterConcat(Rule):
    """``Concat(u(x1), …, u(xk)) -> u(Concat(x1, …, xk))``. Location: ``(concat,)``."""

    name = "unary_after_concat"

    def _sites(self, view: Graph) -> Iterable[Location]:
        for n in view.nodes:
            if n.op_type == "Concat":
                p = view.producer(ins(n)[0])
                if p is not None and p.op_type in UNARY_ELEMENTWISE:
                    yield Location.of((n.name,))

    def _check(self, view: Graph, loc: Location) -> str | None:
        concat = view.node(loc.nodes[0])
        prods = [view.producer(t) for t in ins(concat)]
        reason = _same_unary(view, prods)
        if reason:
            return reason
        for t, p in zip(ins(concat), prods):
            if view.sole_consumer(t) is not concat or list(ins(concat)).count(t) > 1:
                return f"{p.name}'s output has other consumers than the Concat"
        return None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        concat = view.node(loc.nodes[0])
        prods = [view.producer(t) for t in ins(concat)]
        cat = ed.fresh(f"{concat.name}/pre")
        ed.copy_node(concat, [ins(p)[0] for p in prods], [cat], name=concat.name)
        ed.copy_node(prods[0], [cat] + list(ins(prods[0]))[1:], [outs(concat)[0]],
                     name=f"{concat.name}/{prods[0].op_type}")
        ed.remove(concat, *prods)


class UnaryBeforeConcat(Rule):
    """``u(Concat(x1, …, xk)) -> Concat(u(x1), …, u(xk))``. Location: ``(concat, unary)``."""

    name = "unary_before_concat"

    def _sites(self, view: Graph) -> Iterable[Location]:
        for n in view.nodes:
            if n.op_type in UNARY_ELEMENTWISE:
                p = view.producer(ins(n)[0])
                if p is not None and p.op_type == "Concat":
                    yield Location.of((p.name, n.name))

    def _check(self, view: Graph, loc: Location) -> str | None:
        concat, u = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        k = _unary_key(view, u)
        if isinstance(k, str):
            return k
        if view.sole_consumer(outs(concat)[0]) is not u:
            return "Concat output has other consumers (the unary op would be duplicated)"
        return None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        concat, u = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        pieces = []
        for i, t in enumerate(ins(concat)):
            o = ed.fresh(f"{u.name}/part{i}")
            ed.copy_node(u, [t] + list(ins(u))[1:], [o], name=f"{u.name}/part{i}")
            pieces.append(o)
        ed.copy_node(concat, pieces, [outs(u)[0]], name=concat.name)
        ed.remove(concat, u)


class UnaryAfterSplit(Rule):
    """``Split(u(x))[i] -> u(Split(x)[i])``. Location: ``(unary, split)``."""

    name = "unary_after_split"

    def _sites(self, view: Graph) -> Iterable[Location]:
        for n in view.nodes:
            if n.op_type == "Split":
                p = view.producer(ins(n)[0])
                if p is not None and p.op_type in UNARY_ELEMENTWISE:
                    yield Location.of((p.name, n.name))

    def _check(self, view: Graph, loc: Location) -> str | None:
        u, split = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        k = _unary_key(view, u)
        if isinstance(k, str):
            return k
        if view.sole_consumer(outs(u)[0]) is not split:
            return "unary output has other consumers than the Split"
        return None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        u, split = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        parts = []
        for i, o in enumerate(outs(split)):
            if not o:
                parts.append("")
                continue
            pre = ed.fresh(f"{o}/pre")
            parts.append(pre)
            ed.copy_node(u, [pre] + list(ins(u))[1:], [o], name=f"{u.name}/part{i}")
        ed.copy_node(split, [ins(u)[0]] + list(ins(split))[1:], parts, name=split.name)
        ed.remove(u, split)


class UnaryBeforeSplit(Rule):
    """``u(Split(x)[1]), …, u(Split(x)[k]) -> Split(u(x))``. Location: ``(split,)``."""

    name = "unary_before_split"

    def _sites(self, view: Graph) -> Iterable[Location]:
        for n in view.nodes:
            if n.op_type == "Split" and outs(n)[0]:
                users = view.consumers(outs(n)[0])
                if users and users[0].op_type in UNARY_ELEMENTWISE:
                    yield Location.of((n.name,))

    def _check(self, view: Graph, loc: Location) -> str | None:
        split = view.node(loc.nodes[0])
        us = []
        for o in outs(split):
            if not o:
                return "Split has an unused output"
            u = view.sole_consumer(o)
            if u is None:
                return f"Split output {o!r} does not feed exactly one node"
            if ins(u)[0] != o:
                return f"{u.name} does not read the Split output as its first input"
            us.append(u)
        return _same_unary(view, us)

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        split = view.node(loc.nodes[0])
        us = [view.sole_consumer(o) for o in outs(split)]
        act = ed.fresh(f"{split.name}/pre")
        ed.copy_node(us[0], [ins(split)[0]] + list(ins(us[0]))[1:], [act], name=f"{split.name}/{us[0].op_type}")
        ed.copy_node(split, [act] + list(ins(split))[1:], [outs(u)[0] for u in us], name=split.name)
        ed.remove(split, *us)


class BinaryBeforeSplit(Rule):
    """``⊙(Split(a)[i], Split(b)[i]) ∀i -> Split(⊙(a, b))``. Location: ``(split_a, split_b)``."""

    name = "binary_before_split"

    def _sites(self, view: Graph) -> Iterable[Location]:
        for n in view.nodes:
            if n.op_type != "Split" or not outs(n)[0]:
                continue
            for u in view.consumers(outs(n)[0]):
                if u.op_type in _BINARY and len(ins(u)) == 2 and ins(u)[0] == outs(n)[0]:
                    p = view.producer(ins(u)[1])
                    if p is not None and p.op_type == "Split" and p is not n:
                        yield Location.of((n.name, p.name))

    def _ops(self, view: Graph, sa, sb):
        ops = []
        for oa, ob in zip(outs(sa), outs(sb)):
            u = view.sole_consumer(oa) if oa else None
            if u is None or view.sole_consumer(ob) is not u:
                return f"Split outputs {oa!r}/{ob!r} are not both read only by one node"
            if u.op_type not in _BINARY or list(ins(u)) != [oa, ob]:
                return f"{u.name} is not a binary elementwise op on (a[i], b[i])"
            ops.append(u)
        if len({(u.op_type, u.domain) for u in ops}) != 1:
            return "pieces are combined by different ops"
        return ops

    def _check(self, view: Graph, loc: Location) -> str | None:
        sa, sb = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        if len(outs(sa)) != len(outs(sb)):
            return "Splits have different numbers of outputs"
        if attrs(sa).get("axis", 0) != attrs(sb).get("axis", 0):
            return "Splits are along different axes"
        sha, shb = view.shape(ins(sa)[0]), view.shape(ins(sb)[0])
        if sha is None or sha != shb:
            return f"split inputs differ in shape ({sha} vs {shb}) or are not static"
        if view.split_sizes(sa) != view.split_sizes(sb):
            return "Splits have different section sizes"
        ops = self._ops(view, sa, sb)
        return ops if isinstance(ops, str) else None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        sa, sb = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        ops = self._ops(view, sa, sb)
        comb = ed.fresh(f"{ops[0].name}/whole")
        ed.copy_node(ops[0], [ins(sa)[0], ins(sb)[0]], [comb], name=f"{ops[0].name}/whole")
        ed.copy_node(sa, [comb] + list(ins(sa))[1:], [outs(u)[0] for u in ops], name=f"{sa.name}/after")
        ed.remove(sa, sb, *ops)


unary_after_concat_rule = UnaryAfterConcat()
unary_before_concat_rule = UnaryBeforeConcat()
unary_after_split_rule = UnaryAfterSplit()
unary_before_split_rule = UnaryBeforeSplit()
binary_before_split_rule = BinaryBeforeSplit()
