"""Merge sibling convolutions that read the same tensor, and the inverse split.

Forward (TASO's conv merge)::

    Conv(x, W1, b1), …, Conv(x, Wk, bk)  ->  Split(Conv(x, W1‖…‖Wk, b1‖…‖bk), axis=1)
    Relu(Conv(x, W1)), …, Relu(Conv(x, Wk))  ->  Split(Relu(Conv(x, W1‖…‖Wk)), axis=1)

where ``‖`` concatenates along the output-channel axis. The convs must have identical kernel,
strides, pads, dilations and group = 1 (with groups > 1 the concatenated weights would mix
channels), constant weights, and the same data type. When every conv is followed by its only
consumer, the same elementwise activation with the same attributes, the activation moves after
the merged conv (one activation instead of k).

Inverse (lets a search leave the merged form)::

    Split(Conv(x, W, b), axis=1)  ->  Conv(x, W[s1], b[s1]), …, Conv(x, W[sk], b[sk])
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import numpy as np

from xflow.rewrites._base import Location, Rule
from xflow.rewrites._conv_common import conv_attrs, conv_info, conv_infos, geometry_mismatch
from xflow.graphs.edit import Editor
from xflow.graphs.ir import Graph, attrs, ins, outs
from xflow.rewrites._base import UNARY_ELEMENTWISE

__all__ = ["MergeSiblingConvs", "SplitConv", "merge_sibling_convs_rule", "split_conv_rule"]


def _activation(view: Graph, conv) -> object | None:
    """The unary activation that is the conv output's only consumer (None if none)."""
    user = view.sole_consumer(outs(conv)[0])
    if user is not None and user.op_type in UNARY_ELEMENTWISE and user.op_type != "Identity" \
            and all(view.is_const(t) for t in list(ins(user))[1:] if t):
        return user
    return None


def _act_key(view: Graph, act) -> tuple | None:
    if act is None:
        return None
    extra = tuple(view.const(t).tobytes() if t else b"" for t in list(ins(act))[1:])
    return (act.op_type, tuple(sorted(attrs(act).items())), extra)


class MergeSiblingConvs(Rule):
    """``Conv(x, W1), …, Conv(x, Wk) -> Split(Conv(x, W1‖…‖Wk))`` (plus a shared activation).

    Location: the sibling Conv node names in graph order (all siblings with equal attributes).
    """

    name = "merge_sibling_convs"

    def _sites(self, view: Graph) -> Iterable[Location]:
        for x, users in view.consumer_map.items():
            convs = [n for n in users if n.op_type == "Conv" and ins(n)[0] == x]
            if len(convs) < 2:
                continue
            groups: dict[tuple, list] = defaultdict(list)
            loose = []
            for c in convs:
                ci = conv_info(view, c)
                if isinstance(ci, str):
                    loose.append(c)
                else:
                    groups[ci.signature()].append(c)
            for members in groups.values():
                if len(members) >= 2:
                    yield Location.of(sorted((m.name for m in members), key=view.node_index.get))
            if len(groups) > 1 or loose:
                # report the mismatching pairs so ``explain`` can say why they do not merge
                reps = [m[0] for m in groups.values()] + loose
                for a, b in zip(reps, reps[1:]):
                    yield Location.of(sorted((a.name, b.name), key=view.node_index.get))

    def _check(self, view: Graph, loc: Location) -> str | None:
        if len(loc.nodes) < 2:
            return "need at least two convs"
        infos = conv_infos(view, loc.nodes)
        if isinstance(infos, str):
            return infos
        if len({ci.x for ci in infos}) != 1:
            return "convs read different inputs"
        mismatch = geometry_mismatch(infos)
        if mismatch:
            return mismatch
        first = infos[0]
        for ci in infos[1:]:
            if ci.w.dtype != first.w.dtype:
                return "convs differ in weight dtype"
            if ci.w.shape[1:] != first.w.shape[1:]:
                return "convs differ in weight shape"
        if first.group != 1:
            return f"grouped convs (group={first.group}) cannot be merged by concatenating weights"
        return None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        infos = [conv_info(view, view.node(n)) for n in loc.nodes]
        first = infos[0]
        w = np.concatenate([ci.w for ci in infos], axis=0)
        has_bias = any(ci.b is not None for ci in infos)
        inputs = [first.x, ed.add_initializer(f"{first.node.name}/merged_W", w)]
        if has_bias:
            inputs.append(ed.add_initializer(f"{first.node.name}/merged_B",
                                             np.concatenate([ci.bias_or_zeros() for ci in infos])))
        acts = [_activation(view, ci.node) for ci in infos]
        keys = {_act_key(view, a) for a in acts}
        shared_act = acts[0] if len(keys) == 1 and acts[0] is not None else None
        merged = ed.fresh(f"{first.node.name}/merged")
        ed.add_node("Conv", inputs, [merged], name=f"{first.node.name}/merged", **conv_attrs(first))
        split_in = merged
        if shared_act is not None:
            split_in = ed.fresh(f"{shared_act.name}/merged")
            ed.copy_node(shared_act, [merged] + list(ins(shared_act))[1:], [split_in],
                         name=f"{shared_act.name}/merged")
            targets = [outs(a)[0] for a in acts]
            ed.remove(*acts)
        else:
            targets = [outs(ci.node)[0] for ci in infos]
        ed.remove(*(ci.node for ci in infos))
        ed.split(split_in, 1, [ci.out_channels for ci in infos], targets, name=f"{first.node.name}/split")


class SplitConv(Rule):
    """``Split(Conv(x, W), axis=1) -> Conv(x, W[s1]), …, Conv(x, W[sk])`` (inverse of the merge).

    Location: ``(conv, split)`` node names.
    """

    name = "split_conv"

    def _sites(self, view: Graph) -> Iterable[Location]:
        for n in view.nodes:
            if n.op_type == "Split" and view.producer(ins(n)[0]) is not None \
                    and view.producer(ins(n)[0]).op_type == "Conv":
                yield Location.of((view.producer(ins(n)[0]).name, n.name))

    def _check(self, view: Graph, loc: Location) -> str | None:
        conv, split = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        ci = conv_info(view, conv)
        if isinstance(ci, str):
            return ci
        if ci.group != 1:
            return f"grouped conv (group={ci.group})"
        if view.sole_consumer(outs(conv)[0]) is not split:
            return "conv output has other consumers than the Split"
        axis = int(attrs(split).get("axis", 0))
        if axis not in (1, 1 - len(ci.w.shape)):
            return f"Split is along axis {axis}, not the channel axis"
        sizes = view.split_sizes(split)
        if sizes is None or sum(sizes) != ci.out_channels:
            return "Split sizes unknown or do not cover the conv's channels"
        return None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        conv, split = view.node(loc.nodes[0]), view.node(loc.nodes[1])
        ci = conv_info(view, conv)
        sizes = view.split_sizes(split)
        start = 0
        for i, (size, out) in enumerate(zip(sizes, outs(split))):
            sl = slice(start, start + size)
            start += size
            if not out:
                continue
            inputs = [ci.x, ed.add_initializer(f"{conv.name}/part{i}_W", ci.w[sl])]
            if ci.b is not None:
                inputs.append(ed.add_initializer(f"{conv.name}/part{i}_B", ci.b[sl]))
            ed.add_node("Conv", inputs, [out], name=f"{conv.name}/part{i}", **conv_attrs(ci))
        ed.remove(conv, split)


merge_sibling_convs_rule = MergeSiblingConvs()
split_conv_rule = SplitConv()
