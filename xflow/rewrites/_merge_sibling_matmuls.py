"""Merge sibling MatMul / Gemm / MatMul+Add with constant right operands sharing a left input.

Forward (Q/K/V projections)::

    MatMul(x, W1), …, MatMul(x, Wk)                 ->  Split(MatMul(x, W1‖…‖Wk), axis=-1)
    Add(MatMul(x, W1), b1), …, Add(MatMul(x, Wk), bk) ->  Split(Add(MatMul(x, W1‖…‖Wk), b1‖…‖bk), axis=-1)
    Gemm(x, W1, c1; α, β, transB), …                 ->  Split(Add(MatMul(x, α·W1ᵀ?‖…), β·c1‖…), axis=-1)

``W`` are 2-D constants with the same number of rows and dtype; ``‖`` concatenates columns. A
bias is folded in only when it is a constant of shape ``(N,)`` or ``(1, N)`` and the Add is the
MatMul's only consumer; siblings without bias get zeros. A ``(1, N)`` bias needs an input of rank
>= 2 (on a 1-D input it broadcasts the output to ``(1, N)``, which the merged ``(N,)`` bias would
not: the site is rejected). Gemm needs ``transA = 0``.

Inverse::

    Split(MatMul(x, W), axis=-1)  ->  MatMul(x, W[:, s1]), …, MatMul(x, W[:, sk])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import onnx_ir as ir

from xflow.rewrites._base import Location, Rule
from xflow.graphs.edit import Editor
from xflow.graphs.ir import Graph, attrs, ins, outs

__all__ = ["MergeSiblingMatMuls", "SplitMatMul", "merge_sibling_matmuls_rule", "split_matmul_rule"]


@dataclass
class _Proj:
    """A projection ``out = x @ w (+ b)`` found in the graph."""

    nodes: list[ir.Node]   # MatMul [, Add] or Gemm
    out: str
    w: np.ndarray
    b: np.ndarray | None


def _rank(view: Graph, tensor: str) -> int | None:
    """Rank of ``tensor`` (symbolic dimensions allowed), ``None`` if unknown."""
    dims = view.dims(tensor)
    return None if dims is None else len(dims)


def _projection(view: Graph, node: ir.Node) -> _Proj | str:
    if node.op_type == "MatMul":
        w = view.const(ins(node)[1])
        if w is None:
            return f"{node.name}: right operand is not constant"
        if w.ndim != 2:
            return f"{node.name}: right operand is not 2-D"
        add = view.sole_consumer(outs(node)[0])
        if add is not None and add.op_type == "Add":
            other = ins(add)[1] if ins(add)[0] == outs(node)[0] else ins(add)[0]
            b = view.const(other)
            if b is not None and b.dtype == w.dtype and b.shape in ((w.shape[1],), (1, w.shape[1])):
                if b.ndim == 2:
                    # Add(x@W, b) with a (1, N) bias broadcasts a 1-D product to (1, N); the merged
                    # (N,)-bias would give (N,). Fold it only where the product already has rank >= 2.
                    rank = _rank(view, ins(node)[0])
                    if rank is None:
                        return f"{node.name}: (1, N) bias on an input of unknown rank"
                    if rank < 2:
                        return f"{node.name}: (1, N) bias on a 1-D input would change the output shape"
                return _Proj([node, add], outs(add)[0], w, b.reshape(-1))
        return _Proj([node], outs(node)[0], w, None)
    if node.op_type == "Gemm":
        a = attrs(node)
        if int(a.get("transA", 0)):
            return f"{node.name}: Gemm with transA"
        w = view.const(ins(node)[1])
        if w is None:
            return f"{node.name}: right operand is not constant"
        if int(a.get("transB", 0)):
            w = w.T
        w = (w * np.asarray(a.get("alpha", 1.0), dtype=w.dtype)).astype(w.dtype)
        b = None
        if len(ins(node)) > 2 and ins(node)[2]:
            c = view.const(ins(node)[2])
            if c is None:
                return f"{node.name}: Gemm C is not constant"
            if c.size not in (1, w.shape[1]) or (c.ndim == 2 and c.shape[0] != 1):
                return f"{node.name}: Gemm C of shape {c.shape} is not a row bias"
            b = np.broadcast_to(c.reshape(-1), (w.shape[1],)) * np.asarray(a.get("beta", 1.0), dtype=w.dtype)
            b = b.astype(w.dtype)
        return _Proj([node], outs(node)[0], w, b)
    return f"{node.name} is not a MatMul or Gemm"


class MergeSiblingMatMuls(Rule):
    """``x@W1 (+b1), …, x@Wk (+bk) -> Split(x@(W1‖…‖Wk) (+ b1‖…‖bk))``.

    Location: the MatMul/Gemm node names sharing the left input, in graph order.
    """

    name = "merge_sibling_matmuls"

    def _sites(self, view: Graph) -> Iterable[Location]:
        for x, users in view.consumer_map.items():
            mms = [n for n in users if n.op_type in ("MatMul", "Gemm") and ins(n)[0] == x]
            if len(mms) < 2:
                continue
            ok = [n for n in mms if not isinstance(_projection(view, n), str)]
            bad = [n for n in mms if isinstance(_projection(view, n), str)]
            by_rows: dict[tuple, list] = {}
            for n in ok:
                p = _projection(view, n)
                by_rows.setdefault((p.w.shape[0], p.w.dtype.str), []).append(n)
            for members in by_rows.values():
                if len(members) >= 2:
                    yield Location.of(sorted((m.name for m in members), key=view.node_index.get))
            if bad and ok:
                yield Location.of(sorted((ok[0].name, bad[0].name), key=view.node_index.get))

    def _check(self, view: Graph, loc: Location) -> str | None:
        if len(loc.nodes) < 2:
            return "need at least two MatMuls"
        projs = []
        for n in loc.nodes:
            p = _projection(view, view.node(n))
            if isinstance(p, str):
                return p
            projs.append(p)
        if len({ins(p.nodes[0])[0] for p in projs}) != 1:
            return "MatMuls read different left inputs"
        if len({(p.w.shape[0], p.w.dtype.str) for p in projs}) != 1:
            return "right operands differ in rows or dtype"
        if any(p.nodes[0].op_type == "Gemm" for p in projs):
            shp = view.shape(ins(projs[0].nodes[0])[0])
            if shp is None or len(shp) != 2:
                return "Gemm input is not a static 2-D tensor"
        return None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        projs = [_projection(view, view.node(n)) for n in loc.nodes]
        x = ins(projs[0].nodes[0])[0]
        first = projs[0].nodes[0].name
        w = np.concatenate([p.w for p in projs], axis=1)
        merged = ed.fresh(f"{first}/merged")
        ed.add_node("MatMul", [x, ed.add_initializer(f"{first}/merged_W", w)], [merged], name=f"{first}/merged")
        if any(p.b is not None for p in projs):
            b = np.concatenate([p.b if p.b is not None else np.zeros(p.w.shape[1], p.w.dtype) for p in projs])
            biased = ed.fresh(f"{first}/merged_bias")
            ed.add_node("Add", [merged, ed.add_initializer(f"{first}/merged_B", b)], [biased],
                        name=f"{first}/merged_bias")
            merged = biased
        for p in projs:
            ed.remove(*p.nodes)
        ed.split(merged, -1, [p.w.shape[1] for p in projs], [p.out for p in projs], name=f"{first}/split")


class SplitMatMul(Rule):
    """``Split(x@W, axis=-1) -> x@W[:, s1], …, x@W[:, sk]`` (inverse of the merge).

    Location: ``(matmul, split)``.
    """

    name = "split_matmul"

    def _sites(self, view: Graph) -> Iterable[Location]:
        for n in view.nodes:
            p = view.producer(ins(n)[0]) if n.op_type == "Split" else None
            if p is not None and p.op_type == "MatMul":
                yield Location.of((p.name, n.name))

    def _check(self, view: Graph, loc: Location) -> str | None:
        mm, split = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        w = view.const(ins(mm)[1])
        if w is None or w.ndim != 2:
            return "right operand is not a 2-D constant"
        if view.sole_consumer(outs(mm)[0]) is not split:
            return "MatMul output has other consumers than the Split"
        shp = view.shape(ins(split)[0])
        axis = int(attrs(split).get("axis", 0))
        if shp is None or axis % len(shp) != len(shp) - 1:
            return "Split is not along the last axis"
        sizes = view.split_sizes(split)
        if sizes is None or sum(sizes) != w.shape[1]:
            return "Split sizes unknown or do not cover the columns"
        return None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        mm, split = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        w = view.const(ins(mm)[1])
        start = 0
        for i, (size, out) in enumerate(zip(view.split_sizes(split), outs(split))):
            part = w[:, start:start + size]
            start += size
            if out:
                ed.add_node("MatMul", [ins(mm)[0], ed.add_initializer(f"{mm.name}/part{i}_W", part)], [out],
                            name=f"{mm.name}/part{i}")
        ed.remove(mm, split)


merge_sibling_matmuls_rule = MergeSiblingMatMuls()
split_matmul_rule = SplitMatMul()
