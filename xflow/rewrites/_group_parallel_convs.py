"""Merge parallel convs on *different* inputs into one grouped conv, and split a grouped conv back.

Forward, for k convs ``Conv(xi, Wi, bi)`` with identical kernel/strides/pads/dilations, the same
group count g, inputs of identical shape and weights of identical shape::

    Conv(x1, W1, b1), …, Conv(xk, Wk, bk)
        ->  Split(Conv(Concat(x1, …, xk, axis=1), W1‖…‖Wk, b1‖…‖bk, group = k·g), axis=1)

Group j of the merged conv sees exactly channels of ``xj`` and produces ``Conv(xj, Wj)``, so
the result is exact. Location: the conv names, in graph order (a conv may not consume another's
output, which would create a cycle).

Inverse::

    Conv(x, W, group = k·g)  ->  Concat(Conv(x[part j], W[part j], group = g) for j in 1..k)
    (with k = the group count, i.e. ungroup into g = 1 convs)
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import numpy as np

from xflow.rewrites._base import Location, Rule
from xflow.rewrites._conv_common import (ConvInfo, GroupedConvRule, conv_attrs, conv_info, conv_infos,
                                         geometry_mismatch)
from xflow.graphs.edit import Editor
from xflow.graphs.ir import Graph, ins, outs

__all__ = ["GroupParallelConvs", "UngroupConv", "group_parallel_convs_rule", "ungroup_conv_rule"]

_MAX_UNGROUP = 8  # ungrouping depthwise convs (hundreds of groups) would explode the graph


def _ancestors(view: Graph, tensor: str, limit: int = 10000) -> set[str]:
    """Names of nodes upstream of ``tensor`` (bounded walk)."""
    out: set[str] = set()
    stack = [tensor]
    while stack and len(out) < limit:
        p = view.producer(stack.pop())
        if p is None or p.name in out:
            continue
        out.add(p.name)
        stack.extend(t for t in ins(p) if t)
    return out


class GroupParallelConvs(Rule):
    """``Conv(x1, W1), …, Conv(xk, Wk) -> Split(Conv(Concat(x1..xk), W1‖…‖Wk, group=k))``."""

    name = "group_parallel_convs"

    def _sites(self, view: Graph) -> Iterable[Location]:
        buckets: dict[tuple, list] = defaultdict(list)
        for n in view.nodes:
            if n.op_type != "Conv":
                continue
            ci = conv_info(view, n)
            shp = view.shape(ins(n)[0])
            if isinstance(ci, str) or shp is None:
                continue
            buckets[(ci.signature(), ci.w.shape, shp)].append(n)
        for members in buckets.values():
            # pairs of convs on different inputs; a pair is the unit step (k > 2 by repetition)
            for i, a in enumerate(members):
                for b in members[i + 1:]:
                    if ins(a)[0] != ins(b)[0]:
                        yield Location.of((a.name, b.name))

    def _check(self, view: Graph, loc: Location) -> str | None:
        if len(loc.nodes) < 2:
            return "need at least two convs"
        infos = conv_infos(view, loc.nodes)
        if isinstance(infos, str):
            return infos
        if len({ci.x for ci in infos}) != len(infos):
            return "convs read the same input (use merge_sibling_convs)"
        mismatch = geometry_mismatch(infos)
        if mismatch:
            return mismatch
        first = infos[0]
        for ci in infos[1:]:
            if ci.w.shape != first.w.shape or ci.w.dtype != first.w.dtype:
                return f"weights differ in shape ({first.w.shape} vs {ci.w.shape})"
        shapes = {view.shape(ci.x) for ci in infos}
        if None in shapes or len(shapes) != 1:
            return "inputs differ in shape or are not static"
        names = {ci.node.name for ci in infos}
        for ci in infos:
            if _ancestors(view, ci.x) & names:
                return f"{ci.node.name} depends on another conv of the group (would create a cycle)"
        return None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        infos = [conv_info(view, view.node(n)) for n in loc.nodes]
        first = infos[0]
        base = first.node.name
        cat = ed.fresh(f"{base}/grouped_in")
        ed.add_node("Concat", [ci.x for ci in infos], [cat], name=f"{base}/grouped_concat", axis=1)
        inputs = [cat, ed.add_initializer(f"{base}/grouped_W", np.concatenate([ci.w for ci in infos]))]
        if any(ci.b is not None for ci in infos):
            inputs.append(ed.add_initializer(f"{base}/grouped_B",
                                             np.concatenate([ci.bias_or_zeros() for ci in infos])))
        out = ed.fresh(f"{base}/grouped")
        ed.add_node("Conv", inputs, [out], name=f"{base}/grouped",
                    **conv_attrs(first, group=first.group * len(infos)))
        ed.remove(*(ci.node for ci in infos))
        ed.split(out, 1, [ci.out_channels for ci in infos], [outs(ci.node)[0] for ci in infos],
                 name=f"{base}/grouped_split")


class UngroupConv(GroupedConvRule):
    """``Conv(x, W, group=k) -> Concat(Conv(Split(x)[j], W[j]) for j < k)`` (k ≤ 8). Location: ``(conv,)``."""

    name = "ungroup_conv"

    def _check_conv(self, view: Graph, ci: ConvInfo) -> str | None:
        if ci.group > _MAX_UNGROUP:
            return f"group={ci.group} is more than {_MAX_UNGROUP} (depthwise-like; not ungrouped)"
        if view.shape(ci.x) is None:
            return "input shape is not static"
        return None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        ci = conv_info(view, view.node(loc.nodes[0]))
        k, base = ci.group, ci.node.name
        cin = view.shape(ci.x)[1]
        parts_in = [ed.fresh(f"{base}/in{j}") for j in range(k)]
        ed.split(ci.x, 1, [cin // k] * k, parts_in, name=f"{base}/ungroup_split")
        mo = ci.out_channels // k
        pieces = []
        for j in range(k):
            inputs = [parts_in[j], ed.add_initializer(f"{base}/g{j}_W", ci.w[j * mo:(j + 1) * mo])]
            if ci.b is not None:
                inputs.append(ed.add_initializer(f"{base}/g{j}_B", ci.b[j * mo:(j + 1) * mo]))
            o = ed.fresh(f"{base}/out{j}")
            ed.add_node("Conv", inputs, [o], name=f"{base}/g{j}", **conv_attrs(ci, group=1))
            pieces.append(o)
        ed.remove(ci.node)
        ed.add_node("Concat", pieces, [outs(ci.node)[0]], name=f"{base}/ungroup_concat", axis=1)


group_parallel_convs_rule = GroupParallelConvs()
ungroup_conv_rule = UngroupConv()
