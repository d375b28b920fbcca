"""Graphviz rendering (``xflow.graphs.render``) of an ONNX graph or of a neighbourhood of it, with highlighted nodes.

``render(g, "out.svg")`` draws every operator as a box labelled with its op type, its name
and its main attributes (kernel, stride, groups, weight shapes); edges carry the tensor shape.
Graph inputs/outputs are ellipses. With ``around="node"`` (or a list of names) only the
nodes within ``radius`` hops (following edges in either direction) are drawn; tensors that
enter or leave that window from outside are drawn as dashed stubs. ``highlight`` fills the
named nodes (e.g. where a rewrite applied).

The format comes from the file suffix (``.svg``, ``.png``, ``.pdf``) or ``fmt``.
:func:`to_dot` builds the ``graphviz.Digraph`` without running ``dot`` (notebooks can
display it directly); :func:`render` needs the Graphviz ``dot`` binary and raises
:class:`~xflow.errors.GraphvizMissing` with an install hint when it is absent.
"""
from __future__ import annotations

import html
import shutil
from collections import deque
from pathlib import Path
from typing import Iterable

import onnx_ir as ir

from xflow.errors import GraphvizMissing, XflowError
from xflow.graphs.ir import Graph, attrs, ins, outs
from xflow.graphs.model import load_model
from xflow.safeio import atomic_write_bytes

__all__ = ["render", "to_dot", "neighbourhood", "GRAPHVIZ_INSTALL_HINT", "SUPPORTED_FORMATS"]

GRAPHVIZ_INSTALL_HINT = (
    "install Graphviz: `sudo apt-get install graphviz` (Debian/Ubuntu), "
    "`brew install graphviz` (macOS) or `conda install -c conda-forge graphviz`; "
    "`make figures` installs it automatically when run as root"
)
SUPPORTED_FORMATS = ("svg", "png", "pdf")

_HIGHLIGHT = "#ffb000"
_FILL = "#e8eef7"


def _as_graph(g) -> Graph:
    if isinstance(g, Graph):
        return g

    return load_model(g, allow_dynamic=True)


def _names(x: str | Iterable[str] | None) -> list[str]:
    if x is None:
        return []
    return [x] if isinstance(x, str) else list(x)


def neighbourhood(g: Graph, around: str | Iterable[str], radius: int = 2) -> list[ir.Node]:
    """Nodes within ``radius`` hops of ``around`` (edges followed both ways), in graph order."""
    if radius < 0:
        raise XflowError(f"radius must be ≥ 0, got {radius}")
    seeds = [g.node(n) for n in _names(around)]  # UnknownName for a bad name
    dist = {id(n): 0 for n in seeds}
    queue = deque(seeds)
    while queue:
        n = queue.popleft()
        d = dist[id(n)]
        if d == radius:
            continue
        for m in g.predecessors(n) + g.successors(n):
            if id(m) not in dist:
                dist[id(m)] = d + 1
                queue.append(m)
    return [n for n in g.nodes if id(n) in dist]


def _fmt_shape(g: Graph, name: str) -> str:
    info = g.tensors.get(name)
    if info is None or info.shape is None:
        return ""
    return "×".join(str(d) for d in info.shape) if info.shape else "scalar"


def _label(g: Graph, node: ir.Node) -> str:
    a = attrs(node)
    rows = [f"<B>{html.escape(node.op_type)}</B>", html.escape(node.name)]
    bits = []
    if "kernel_shape" in a:
        bits.append("k=" + "×".join(map(str, a["kernel_shape"])))
    if a.get("strides") and any(s != 1 for s in a["strides"]):
        bits.append("s=" + "×".join(map(str, a["strides"])))
    if a.get("group", 1) != 1:
        bits.append(f"g={a['group']}")
    if "perm" in a:
        bits.append("perm=" + ",".join(map(str, a["perm"])))
    if "axis" in a and isinstance(a["axis"], int):
        bits.append(f"axis={a['axis']}")
    if bits:
        rows.append(html.escape(" ".join(bits)))
    for i in ins(node):
        if i and g.is_initializer(i):
            rows.append(f'<FONT POINT-SIZE="9">{html.escape(i[-24:])}: {_fmt_shape(g, i)}</FONT>')
            if len(rows) > 7:
                break
    return "<" + "<BR/>".join(rows) + ">"


def to_dot(
    g,
    *,
    highlight: str | Iterable[str] = (),
    around: str | Iterable[str] | None = None,
    radius: int = 2,
    title: str | None = None,
):
    """Build a ``graphviz.Digraph`` of ``g`` (a Graph, ModelProto, path or bytes)."""
    import graphviz

    g = _as_graph(g)
    hl = set(_names(highlight))
    for name in hl:
        g.node(name)  # validate names early
    nodes = neighbourhood(g, around, radius) if around is not None else list(g.nodes)
    shown = {id(n) for n in nodes}
    ids = {id(n): f"n{i}" for i, n in enumerate(g.nodes)}

    dot = graphviz.Digraph(name=g.ir.graph.name or "graph")
    dot.attr(rankdir="TB", fontname="Helvetica")
    if title:
        dot.attr(label=title, labelloc="t", fontsize="14")
    dot.attr("node", shape="box", style="rounded,filled", fillcolor=_FILL, fontname="Helvetica",
             fontsize="11")
    dot.attr("edge", fontname="Helvetica", fontsize="9", color="#555555")
    for n in nodes:
        extra = {"fillcolor": _HIGHLIGHT, "penwidth": "2"} if n.name in hl else {}
        dot.node(ids[id(n)], _label(g, n), **extra)

    stubs: dict[str, str] = {}

    def stub(name: str, kind: str) -> str:
        key = f"{kind}:{name}"
        if key not in stubs:
            sid = f"t{len(stubs)}"
            stubs[key] = sid
            if kind in ("input", "output"):
                dot.node(sid, f"{name}\n{_fmt_shape(g, name)}", shape="ellipse", style="filled",
                         fillcolor="#ffffff")
            else:
                dot.node(sid, name[-24:], shape="plaintext", style="dashed", fontcolor="#888888")
        return stubs[key]

    graph_inputs, graph_outputs = set(g.inputs), set(g.outputs)
    for n in nodes:
        for t in dict.fromkeys(ins(n)):
            if not t or g.is_initializer(t):
                continue
            p = g.producer(t)
            label = _fmt_shape(g, t)
            if p is not None and id(p) in shown:
                dot.edge(ids[id(p)], ids[id(n)], label=label)
            elif t in graph_inputs:
                dot.edge(stub(t, "input"), ids[id(n)], label=label)
            else:
                dot.edge(stub(t, "outside"), ids[id(n)], label=label, style="dashed")
        for t in outs(n):
            if t in graph_outputs:
                dot.edge(ids[id(n)], stub(t, "output"), label=_fmt_shape(g, t))
            elif around is not None:
                if any(id(c) not in shown for c in g.consumers(t)):
                    dot.edge(ids[id(n)], stub(t, "outside"), style="dashed")
    return dot


def _dot_available() -> bool:
    return shutil.which("dot") is not None


def render(
    g,
    path: str | Path,
    *,
    highlight: str | Iterable[str] = (),
    around: str | Iterable[str] | None = None,
    radius: int = 2,
    fmt: str | None = None,
    title: str | None = None,
) -> Path:
    """Render ``g`` to ``path`` (SVG/PNG/PDF by suffix or ``fmt``) and return the path.

    Args:
        g: a :class:`Graph` (or anything :func:`~xflow.graphs.load_model` accepts).
        path: output file.
        highlight: node name(s) drawn filled in orange.
        around: node name(s) whose ``radius``-hop neighbourhood is drawn instead of the whole graph.
        radius: hops around ``around``.
        fmt: output format when the suffix does not say.
        title: optional caption.

    Raises:
        GraphvizMissing: the ``dot`` binary is not on ``PATH``.
        UnknownName: a highlighted or ``around`` node does not exist.
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in SUPPORTED_FORMATS:
        raise XflowError(
            f"cannot render to {str(path)!r}: unknown format {fmt!r}; use a .svg, .png or .pdf "
            "suffix or pass fmt="
        )
    if not _dot_available():
        raise GraphvizMissing(f"the Graphviz 'dot' binary is not on PATH; {GRAPHVIZ_INSTALL_HINT}")
    dot = to_dot(g, highlight=highlight, around=around, radius=radius, title=title)
    try:
        data = dot.pipe(format=fmt)
    except Exception as e:  # graphviz.ExecutableNotFound, CalledProcessError
        import graphviz

        if isinstance(e, graphviz.ExecutableNotFound):
            raise GraphvizMissing(f"the Graphviz 'dot' binary could not be run; {GRAPHVIZ_INSTALL_HINT}") from e
        raise XflowError(f"Graphviz failed to render {str(path)!r}: {e}") from e

    atomic_write_bytes(path, data)
    return path
