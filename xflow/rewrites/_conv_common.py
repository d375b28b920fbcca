"""Shared helpers for the Conv rule families: normalised Conv attributes and constant weights."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

from xflow.graphs.ir import Graph, attrs, ins, outs
from xflow.rewrites._base import Location, Rule

__all__ = ["ConvInfo", "conv_info", "conv_infos", "geometry_mismatch", "GEOMETRY", "conv_attrs", "GroupedConvRule"]

GEOMETRY = ("kernel", "strides", "pads", "dilations", "group")
"""The Conv attributes that fix how a kernel slides over its input."""


@dataclass(frozen=True)
class ConvInfo:
    """A Conv node with constant weights, its attributes normalised (defaults filled in)."""

    node: ir.Node
    x: str
    w: np.ndarray
    b: np.ndarray | None
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    pads: tuple[int, ...]
    dilations: tuple[int, ...]
    group: int

    @property
    def out_channels(self) -> int:
        return int(self.w.shape[0])

    def signature(self) -> tuple:
        """What must be identical for two convs on one input to be merged."""
        return (self.kernel, self.strides, self.pads, self.dilations, self.group, self.w.dtype.str)

    def bias_or_zeros(self) -> np.ndarray:
        return self.b if self.b is not None else np.zeros(self.out_channels, dtype=self.w.dtype)


def conv_info(view: Graph, node: ir.Node) -> ConvInfo | str:
    """Normalised :class:`ConvInfo` of a Conv node, or the reason it cannot be used by a rule."""
    if node.op_type != "Conv" or node.domain not in ("", "ai.onnx"):
        return f"{node.name} is not an ONNX Conv"
    a = attrs(node)
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        return f"{node.name} uses auto_pad={a['auto_pad']} (explicit pads needed)"
    w = view.const(ins(node)[1])
    if w is None:
        return f"{node.name} has non-constant weights"
    b = None
    if len(ins(node)) > 2 and ins(node)[2]:
        b = view.const(ins(node)[2])
        if b is None:
            return f"{node.name} has a non-constant bias"
    nd = w.ndim - 2
    kernel = tuple(int(k) for k in a.get("kernel_shape", w.shape[2:]))
    strides = tuple(int(s) for s in a.get("strides", (1,) * nd))
    pads = tuple(int(p) for p in a.get("pads", (0,) * (2 * nd)))
    dilations = tuple(int(d) for d in a.get("dilations", (1,) * nd))
    return ConvInfo(node, ins(node)[0], w, b, kernel, strides, pads, dilations, int(a.get("group", 1)))


def conv_infos(view: Graph, names) -> list[ConvInfo] | str:
    """:class:`ConvInfo` of each named node, or the first reason one of them cannot be used."""
    infos = []
    for n in names:
        ci = conv_info(view, view.node(n))
        if isinstance(ci, str):
            return ci
        infos.append(ci)
    return infos


def geometry_mismatch(infos: list[ConvInfo], fields=GEOMETRY) -> str | None:
    """The first of ``fields`` on which ``infos`` differ from ``infos[0]``, as a reason (else ``None``)."""
    first = infos[0]
    for ci in infos[1:]:
        for field in fields:
            if getattr(ci, field) != getattr(first, field):
                return f"convs differ in {field} ({getattr(first, field)} vs {getattr(ci, field)})"
    return None


def conv_attrs(ci: ConvInfo, **override) -> dict:
    """Attribute dict for a new Conv node equal to ``ci``'s (with overrides)."""
    d = dict(kernel_shape=ci.kernel, strides=ci.strides, pads=ci.pads, dilations=ci.dilations, group=ci.group)
    d.update(override)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


class GroupedConvRule(Rule):
    """Base of the rules whose site is one grouped Conv (``Location``: ``(conv,)``): every usable
    Conv with more than one group is a site; subclasses check the :class:`ConvInfo` in ``_check_conv``."""

    def _sites(self, view: Graph) -> Iterable[Location]:
        for n in view.nodes:
            if n.op_type == "Conv":
                ci = conv_info(view, n)
                if not isinstance(ci, str) and ci.group > 1:
                    yield Location.of((n.name,))

    def _check(self, view: Graph, loc: Location) -> str | None:
        ci = conv_info(view, view.node(loc.nodes[0]))
        return ci if isinstance(ci, str) else self._check_conv(view, ci)

    def _check_conv(self, view: Graph, ci: ConvInfo) -> str | None:
        raise NotImplementedError
