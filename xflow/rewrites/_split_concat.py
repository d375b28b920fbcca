"""Cancel a Split followed by a Concat (and a Concat followed by a Split) on the same axis.

::

    Concat(a, Split(x, axis)[0], …, Split(x, axis)[k-1], b, axis)  ->  Concat(a, x, b, axis)
    Concat(Split(x, axis)[0..k-1], axis)                           ->  x
    Split(Concat(x1, …, xk, axis), axis, sizes = |x1|, …, |xk|)[i] ->  xi

The Split outputs must appear in order, contiguously and all of them; the axes must agree. A
merged conv whose Split feeds a Concat directly therefore loses its Split (a layout-friendly
merge). Split outputs with other readers keep the Split alive (only the Concat is simplified).
"""
from __future__ import annotations

from typing import Iterable

from xflow.rewrites._base import Location, Rule
from xflow.graphs.edit import Editor
from xflow.graphs.ir import Graph, attrs, ins, outs

__all__ = ["SplitConcatCancel", "ConcatSplitCancel", "split_concat_rule", "concat_split_rule"]


def _axis(view: Graph, node, tensor: str) -> int | None:
    shp = view.shape(tensor)
    axis = int(attrs(node).get("axis", 0))
    if axis < 0:
        if shp is None:
            return None
        axis += len(shp)
    return axis


class SplitConcatCancel(Rule):
    """``Concat(…, Split(x)[0..k-1], …) -> Concat(…, x, …)``; a Concat of only ``x`` becomes ``x``.

    Location: ``(split, concat)`` node names.
    """

    name = "split_concat_cancel"

    def _sites(self, view: Graph) -> Iterable[Location]:
        for n in view.nodes:
            if n.op_type != "Concat":
                continue
            for t in ins(n):
                p = view.producer(t)
                if p is not None and p.op_type == "Split":
                    yield Location.of((p.name, n.name))

    def _check(self, view: Graph, loc: Location) -> str | None:
        split, concat = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        if split.op_type != "Split" or concat.op_type != "Concat":
            return "expected a Split and a Concat"
        pieces = outs(split)
        if not all(pieces):
            return "Split has unused (empty) outputs"
        reads = ins(concat)
        try:
            start = reads.index(pieces[0])
        except ValueError:
            return "Concat does not read the first Split output"
        if reads[start:start + len(pieces)] != pieces:
            return "Concat does not read all Split outputs in order and contiguously"
        ax_s = _axis(view, split, ins(split)[0])
        ax_c = _axis(view, concat, outs(concat)[0])
        if ax_s is None or ax_c is None:
            return "unknown rank for a negative axis"
        if ax_s != ax_c:
            return f"Split axis {ax_s} differs from Concat axis {ax_c}"
        return None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        split, concat = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        pieces = outs(split)
        reads = ins(concat)
        start = reads.index(pieces[0])
        new_ins = reads[:start] + [ins(split)[0]] + reads[start + len(pieces):]
        ed.remove(concat)
        if len(new_ins) == 1:
            ed.replace_uses(outs(concat)[0], new_ins[0])
        else:
            ed.copy_node(concat, new_ins, list(outs(concat)), name=concat.name)


class ConcatSplitCancel(Rule):
    """``Split(Concat(x1, …, xk))[i] -> xi`` when the split sizes equal the concatenated sizes.

    Location: ``(concat, split)`` node names.
    """

    name = "concat_split_cancel"

    def _sites(self, view: Graph) -> Iterable[Location]:
        for n in view.nodes:
            if n.op_type == "Split":
                p = view.producer(ins(n)[0])
                if p is not None and p.op_type == "Concat":
                    yield Location.of((p.name, n.name))

    def _check(self, view: Graph, loc: Location) -> str | None:
        concat, split = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        ax_c = _axis(view, concat, outs(concat)[0])
        ax_s = _axis(view, split, ins(split)[0])
        if ax_s is None or ax_c is None:
            return "unknown rank for a negative axis"
        if ax_s != ax_c:
            return f"Split axis {ax_s} differs from Concat axis {ax_c}"
        shapes = [view.shape(t) for t in ins(concat)]
        if any(s is None for s in shapes):
            return "Concat input shapes are not static"
        sizes = view.split_sizes(split)
        if sizes is None:
            return "Split sizes unknown"
        if [s[ax_c] for s in shapes] != list(sizes):
            return f"Split sizes {list(sizes)} differ from Concat input sizes {[s[ax_c] for s in shapes]}"
        return None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        concat, split = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        for src, out in zip(ins(concat), outs(split)):
            if out:
                ed.replace_uses(out, src)
        ed.remove(split)


split_concat_rule = SplitConcatCancel()
concat_split_rule = ConcatSplitCancel()
