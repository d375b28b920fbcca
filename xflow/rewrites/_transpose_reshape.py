"""Fuse consecutive Transposes / Reshapes and remove identity ones.

::

    Transpose(Transpose(x, p), q)  ->  Transpose(x, p∘q)        (p∘q)[i] = p[q[i]]
    Transpose(x, (0, 1, …, n-1))   ->  x
    Reshape(Reshape(x, s), t)      ->  Reshape(x, t)            (t resolved to a static shape if it
                                                                 copies dims with 0)
    Reshape(x, s)                  ->  x                        (static shape of x equals the output)
"""
from __future__ import annotations

from typing import Iterable

from xflow.rewrites._base import Location, Rule
from xflow.graphs.edit import Editor
from xflow.graphs.ir import Graph, attrs, ins, outs

__all__ = [
    "FuseTransposes", "RemoveIdentityTranspose", "FuseReshapes", "RemoveIdentityReshape",
    "fuse_transposes_rule", "remove_identity_transpose_rule", "fuse_reshapes_rule",
    "remove_identity_reshape_rule",
]


def _perm(view: Graph, node) -> tuple[int, ...] | None:
    p = attrs(node).get("perm")
    if p is not None:
        return tuple(int(i) for i in p)
    shp = view.shape(ins(node)[0])
    return None if shp is None else tuple(reversed(range(len(shp))))


def _chain_sites(view: Graph, op: str) -> Iterable[Location]:
    for n in view.nodes:
        if n.op_type == op:
            p = view.producer(ins(n)[0])
            if p is not None and p.op_type == op:
                yield Location.of((p.name, n.name))


class FuseTransposes(Rule):
    """``Transpose(Transpose(x, p), q) -> Transpose(x, p∘q)``. Location: ``(inner, outer)``."""

    name = "fuse_transposes"

    def _sites(self, view: Graph) -> Iterable[Location]:
        return _chain_sites(view, "Transpose")

    def _check(self, view: Graph, loc: Location) -> str | None:
        inner, outer = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        if ins(outer)[0] != outs(inner)[0]:
            return "outer Transpose does not read the inner one"
        if _perm(view, inner) is None or _perm(view, outer) is None:
            return "default perm with unknown rank"
        return None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        inner, outer = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        p, q = _perm(view, inner), _perm(view, outer)
        perm = [p[i] for i in q]
        ed.remove(outer)
        if perm == list(range(len(perm))):
            ed.replace_uses(outs(outer)[0], ins(inner)[0])
        else:
            ed.add_node("Transpose", [ins(inner)[0]], [outs(outer)[0]], name=outer.name, perm=perm)


class RemoveIdentityTranspose(Rule):
    """``Transpose(x, (0, …, n-1)) -> x``. Location: ``(transpose,)``."""

    name = "remove_identity_transpose"

    def _sites(self, view: Graph) -> Iterable[Location]:
        return (Location.of((n.name,)) for n in view.nodes if n.op_type == "Transpose")

    def _check(self, view: Graph, loc: Location) -> str | None:
        perm = _perm(view, view.node(loc.nodes[0]))
        if perm is None:
            return "default perm with unknown rank"
        if perm != tuple(range(len(perm))):
            return f"perm {perm} is not the identity"
        return None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        n = view.node(loc.nodes[0])
        ed.remove(n)
        ed.replace_uses(outs(n)[0], ins(n)[0])


def _target_shape(view: Graph, node) -> list[int] | str:
    """The outer Reshape's shape with 0 (copy) dims resolved, or a reason."""
    s = view.const(ins(node)[1])
    if s is None:
        return "shape operand is not constant"
    s = [int(v) for v in s.reshape(-1)]
    if int(attrs(node).get("allowzero", 0)) == 1:
        return s
    if 0 in s:
        out = view.shape(outs(node)[0])
        if out is None:
            return "shape copies input dims (0) and the output shape is not static"
        return list(out)
    return s


class FuseReshapes(Rule):
    """``Reshape(Reshape(x, s), t) -> Reshape(x, t)``. Location: ``(inner, outer)``."""

    name = "fuse_reshapes"

    def _sites(self, view: Graph) -> Iterable[Location]:
        return _chain_sites(view, "Reshape")

    def _check(self, view: Graph, loc: Location) -> str | None:
        outer = view.node(loc.nodes[1])
        t = _target_shape(view, outer)
        return t if isinstance(t, str) else None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        inner, outer = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        t = _target_shape(view, outer)
        shape = ed.add_int64(f"{outer.name}/shape", t)
        ed.remove(outer)
        ed.copy_node(outer, [ins(inner)[0], shape], [outs(outer)[0]], name=outer.name)


class RemoveIdentityReshape(Rule):
    """``Reshape(x, s) -> x`` when x already has the output's static shape. Location: ``(reshape,)``."""

    name = "remove_identity_reshape"

    def _sites(self, view: Graph) -> Iterable[Location]:
        return (Location.of((n.name,)) for n in view.nodes if n.op_type in ("Reshape", "Flatten", "Squeeze", "Unsqueeze"))

    def _check(self, view: Graph, loc: Location) -> str | None:
        n = view.node(loc.nodes[0])
        a, b = view.shape(ins(n)[0]), view.shape(outs(n)[0])
        if a is None or b is None:
            return "input or output shape is not static"
        if a != b:
            return f"shape changes ({a} -> {b})"
        return None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        n = view.node(loc.nodes[0])
        ed.remove(n)
        ed.replace_uses(outs(n)[0], ins(n)[0])


fuse_transposes_rule = FuseTransposes()
remove_identity_transpose_rule = RemoveIdentityTranspose()
fuse_reshapes_rule = FuseReshapes()
remove_identity_reshape_rule = RemoveIdentityReshape()
