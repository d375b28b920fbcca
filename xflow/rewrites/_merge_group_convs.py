"""Halve a grouped conv's group count by zero-padding its weights (TASO's ``merge_group_convs``).

For a Conv with constant weights ``W`` of shape ``(C_out, C_in / G, kh, kw)`` and an even group
count ``G``::

    Conv(x, W, group = G)  ->  Conv(x, W', group = G / 2)

``W'`` has shape ``(C_out, 2 · C_in / G, kh, kw)``: each new group covers two old groups, and an
output channel ``o`` of old group ``g = o // (C_out / G)`` keeps its filter in input block
``g mod 2`` of its new group, zeros in the other. Writing ``c = C_in / G``::

    W'[o, (g mod 2)·c : (g mod 2 + 1)·c] = W[o],   W'[o, other block] = 0

so every output is the same sum as before plus products with exact zeros (the result is exact for
finite inputs; an ``inf`` or ``NaN`` input would give ``NaN`` through ``0 · inf``). The conv does
twice the multiply-adds in half as many, twice as wide, groups: a gain where a backend's grouped
kernels are slow at narrow groups (cuDNN's, TASO's motivation on ResNeXt-50), a loss where they are
not. Location: ``(conv,)``. Applying it again halves the groups again, down to ``group = 1``.

Source: TASO, ``src/core/substitution.cc`` ``GraphXfer::create_merge_group_convs`` (the ``merge_gconv``
weight op, ``count = 2``), registered in ``Graph::optimize`` (``src/core/graph.cc``) for strides
1×1 and 2×2, SAME padding, activation none or ReLU. Differences:

* any strides, pads and dilations are accepted (the rewrite is exact for all of them; TASO's
  patterns name the geometries its conv matcher needs). ONNX has no fused activation, so a
  following ReLU is simply left in place.
* The zero-padded weight is built at rewrite time as an initializer; TASO computes it with a
  ``merge_gconv`` kernel whose run time it counts as 0 (a weight-only op).
* TASO's CPU and CUDA kernels place row ``o`` in block ``o // (C_out / count)``, i.e. by the half of
  *all* output channels ``o`` is in. That equals ``g mod 2`` only when ``G = 2``; for larger ``G``
  it moves odd groups' filters onto the wrong input channels. TASO only costs the graph, so its
  search is unaffected; a rewrite here must keep outputs (checked by ``verify_rewrite``), so the
  placement above is the exact one.
* There is no inverse rule (TASO has none): recognising a zero block structure in weights is not
  a substitution TASO searches.
"""
from __future__ import annotations

import numpy as np

from xflow.graphs.edit import Editor
from xflow.graphs.ir import Graph, outs
from xflow.rewrites._base import Location
from xflow.rewrites._conv_common import ConvInfo, GroupedConvRule, conv_attrs, conv_info

__all__ = ["MergeGroupConvs", "merge_group_convs_rule", "merged_group_weight"]


def merged_group_weight(w: np.ndarray, group: int) -> np.ndarray:
    """``W'`` of the module docstring: ``w`` of a ``group``-group conv laid out for ``group // 2``
    groups, each output channel's filter in input block ``(its old group) mod 2``, zeros elsewhere."""
    c_out, c = int(w.shape[0]), int(w.shape[1])
    per_group = c_out // group
    out = np.zeros((c_out, 2 * c, *w.shape[2:]), dtype=w.dtype)
    block = (np.arange(c_out) // per_group) % 2
    for b in (0, 1):
        rows = block == b
        out[rows, b * c:(b + 1) * c] = w[rows]
    return out


class MergeGroupConvs(GroupedConvRule):
    """Conv(x, W, group=G) -> Conv(x, W' zero-padded, group=G/2) (G even)."""

    name = "merge_group_convs"

    def _check_conv(self, view: Graph, ci: ConvInfo) -> str | None:
        if ci.group % 2:
            return f"group={ci.group} is odd (merging pairs of groups needs an even count)"
        if ci.out_channels % ci.group:
            return f"{ci.out_channels} output channels do not split into {ci.group} groups"
        if not np.issubdtype(ci.w.dtype, np.floating):
            return f"weights of dtype {ci.w.dtype} (float weights only)"
        return None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        ci = conv_info(view, view.node(loc.nodes[0]))
        base = ci.node.name
        inputs = [ci.x, ed.add_initializer(f"{base}/merged_group_W", merged_group_weight(ci.w, ci.group))]
        if ci.b is not None:
            inputs.append(ed.add_initializer(f"{base}/merged_group_B", ci.b))
        ed.remove(ci.node)
        ed.add_node("Conv", inputs, [outs(ci.node)[0]], name=f"{base}/g{ci.group // 2}",
                    **conv_attrs(ci, group=ci.group // 2))


merge_group_convs_rule = MergeGroupConvs()
