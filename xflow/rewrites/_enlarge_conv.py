"""Enlarge a conv kernel with zeros to a sibling's kernel size (TASO's *enlarge*), and shrink back.

Forward, for a conv with kernel ``k`` next to a sibling on the same input with kernel ``k'``, the
target ``K`` is the per-axis maximum of ``k`` and ``k'`` (1×3 beside 3×1 → 3×3)::

    Conv(x, W[k], pads=p)  ->  Conv(x, ZeroPad(W)[K], pads=P)

``W`` is placed at offset ``d`` inside a zero ``K`` kernel; with dilation ``δ`` the result is
identical when ``P_begin = p_begin + d·δ`` and ``P_end = p_end + (K - k - d)·δ`` for some
``0 ≤ d ≤ K - k``. On each axis the rule takes ``P`` from the conv with the larger kernel (so the
convs, once both enlarged, merge with
:mod:`~xflow.rewrites._merge_sibling_convs`) and matches only when such ``d`` exists for every
spatial axis and strides/dilations/groups agree. Enlarging adds real FLOPs; on its own it is a
step that a search must be able to take temporarily.

Inverse::

    Conv(x, W[K], pads=P)  ->  Conv(x, W[k], pads=p)     (W zero outside a k window)
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from xflow.rewrites._base import Location, Rule
from xflow.rewrites._conv_common import ConvInfo, conv_attrs, conv_info, geometry_mismatch
from xflow.graphs.edit import Editor
from xflow.graphs.ir import Graph, ins, outs

__all__ = ["EnlargeConvKernel", "ShrinkConvKernel", "enlarge_conv_rule", "shrink_conv_rule"]


def _target(small: ConvInfo, sibling: ConvInfo) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Target kernel (per-axis max of the two) and pads (from the conv with the larger kernel on
    each axis; 1x3 next to 3x1 gives 3x3 with the 3x1's height pads and the 1x3's width pads)."""
    nd = len(small.kernel)
    kernel, begin, end = [], [], []
    for ax in range(nd):
        src = sibling if sibling.kernel[ax] >= small.kernel[ax] else small
        kernel.append(src.kernel[ax])
        begin.append(src.pads[ax])
        end.append(src.pads[ax + nd])
    return tuple(kernel), tuple(begin + end)


def _offsets(small: ConvInfo, kernel: tuple[int, ...], pads: tuple[int, ...]) -> list[int] | str:
    """Per-axis offsets ``d`` placing the small kernel inside ``kernel`` with ``pads``; or a reason."""
    nd = len(small.kernel)
    out = []
    for ax in range(nd):
        k, K, dil = small.kernel[ax], kernel[ax], small.dilations[ax]
        if K < k:
            return f"target kernel {kernel} is smaller than {small.kernel}"
        db = pads[ax] - small.pads[ax]
        de = pads[ax + nd] - small.pads[ax + nd]
        if db % dil or de % dil:
            return "pad difference is not a multiple of the dilation"
        d, e = db // dil, de // dil
        if d < 0 or e < 0 or d + e != K - k:
            return (f"pads {pads} cannot be reached from {small.pads} by zero-padding the kernel "
                    f"on axis {ax} (output would shift or change size)")
        out.append(d)
    return out


class EnlargeConvKernel(Rule):
    """``Conv(x, W[k]) -> Conv(x, ZeroPad(W)[K])`` to match sibling ``Conv(x, V[K])``.

    Location: ``(small_conv, sibling_conv)``.
    """

    name = "enlarge_conv_kernel"

    def _sites(self, view: Graph) -> Iterable[Location]:
        for x, users in view.consumer_map.items():
            convs = [n for n in users if n.op_type == "Conv" and ins(n)[0] == x]
            for a in convs:
                ia = conv_info(view, a)
                if isinstance(ia, str):
                    continue
                targets = set()
                for b in convs:
                    ib = conv_info(view, b)
                    if a is b or isinstance(ib, str) or ib.kernel == ia.kernel:
                        continue
                    target = _target(ia, ib)
                    if target[0] != ia.kernel and target not in targets:
                        targets.add(target)  # one site per distinct target
                        yield Location.of((a.name, b.name))

    def _check(self, view: Graph, loc: Location) -> str | None:
        a, b = (conv_info(view, view.node(n)) for n in loc.nodes)
        for ci in (a, b):
            if isinstance(ci, str):
                return ci
        if a.x != b.x:
            return "convs read different inputs"
        if a.kernel == b.kernel:
            return "kernels already equal"
        mismatch = geometry_mismatch([a, b], ("strides", "dilations", "group"))
        if mismatch:
            return mismatch
        kernel, pads = _target(a, b)
        if kernel == a.kernel:
            return f"kernel {a.kernel} already covers the sibling's {b.kernel}"
        offs = _offsets(a, kernel, pads)
        return offs if isinstance(offs, str) else None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        a, b = (conv_info(view, view.node(n)) for n in loc.nodes)
        kernel, pads = _target(a, b)
        offs = _offsets(a, kernel, pads)
        w = np.zeros(a.w.shape[:2] + tuple(kernel), dtype=a.w.dtype)
        w[(slice(None), slice(None)) + tuple(slice(d, d + k) for d, k in zip(offs, a.kernel))] = a.w
        inputs = [a.x, ed.add_initializer(f"{a.node.name}/enlarged_W", w)] + list(ins(a.node))[2:]
        ed.remove(a.node)
        ed.add_node("Conv", inputs, [outs(a.node)[0]], name=f"{a.node.name}/enlarged",
                    **conv_attrs(a, kernel_shape=kernel, pads=pads))


def _support(w: np.ndarray) -> list[tuple[int, int]]:
    """Per spatial axis, the [first, last] index where ``w`` has a non-zero."""
    out = []
    for ax in range(2, w.ndim):
        other = tuple(i for i in range(w.ndim) if i != ax)
        nz = np.flatnonzero(np.any(w != 0, axis=other))
        out.append((int(nz[0]), int(nz[-1])) if nz.size else (0, 0))
    return out


class ShrinkConvKernel(Rule):
    """``Conv(x, W[K]) -> Conv(x, W[k])`` dropping all-zero kernel borders. Location: ``(conv,)``."""

    name = "shrink_conv_kernel"

    def _sites(self, view: Graph) -> Iterable[Location]:
        return (Location.of((n.name,)) for n in view.nodes if n.op_type == "Conv")

    def _check(self, view: Graph, loc: Location) -> str | None:
        ci = conv_info(view, view.node(loc.nodes[0]))
        if isinstance(ci, str):
            return ci
        sup = _support(ci.w)
        if all(lo == 0 and hi == k - 1 for (lo, hi), k in zip(sup, ci.kernel)):
            return "kernel has no all-zero border"
        nd = len(ci.kernel)
        for ax, (lo, hi) in enumerate(sup):
            k = ci.kernel[ax]
            if ci.pads[ax] < lo * ci.dilations[ax] or ci.pads[ax + nd] < (k - 1 - hi) * ci.dilations[ax]:
                return "zero border larger than the padding (output size would change)"
        return None

    def _rewrite(self, view: Graph, loc: Location, ed: Editor) -> None:
        ci = conv_info(view, view.node(loc.nodes[0]))
        sup = _support(ci.w)
        nd = len(ci.kernel)
        w = ci.w[(slice(None), slice(None)) + tuple(slice(lo, hi + 1) for lo, hi in sup)]
        pads = [ci.pads[ax] - sup[ax][0] * ci.dilations[ax] for ax in range(nd)]
        pads += [ci.pads[ax + nd] - (ci.kernel[ax] - 1 - sup[ax][1]) * ci.dilations[ax] for ax in range(nd)]
        inputs = [ci.x, ed.add_initializer(f"{ci.node.name}/shrunk_W", w)] + list(ins(ci.node))[2:]
        ed.remove(ci.node)
        ed.add_node("Conv", inputs, [outs(ci.node)[0]], name=f"{ci.node.name}/shrunk",
                    **conv_attrs(ci, kernel_shape=tuple(w.shape[2:]), pads=tuple(pads)))


enlarge_conv_rule = EnlargeConvKernel()
shrink_conv_rule = ShrinkConvKernel()
