"""Pictures of batching decisions: which node ran in which batch, per strategy.

* :func:`schedule_table` — one row per executed node: batch index, op, signature, example.
* :func:`plot_schedule` — matplotlib: x = execution step (batch index), y = example, one marker
  per node coloured by op; nodes in one column ran as one kernel.
* :func:`render_batches` — Graphviz: the graph itself, nodes coloured by the batch they ran in
  (same colour = same kernel launch), leaves grey.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xflow.errors import GraphvizMissing

from .graph import Graph

__all__ = ["schedule_table", "plot_schedule", "render_batches", "record_examples"]


def record_examples(model: Any, batch: Sequence[Any], strategy: str) -> tuple[Graph, list[int]]:
    """Record ``model.loss_autobatch`` one example at a time and run it.

    Returns the executed graph and ``example_of``: the example index of every node (``-1`` for
    nodes created before the first example, e.g. shared zero states).
    """
    g = Graph(strategy=strategy)
    example_of: list[int] = []
    losses = []
    with g:
        for i, ex in enumerate(batch):
            losses += model.loss_autobatch([ex])
            example_of += [i] * (len(g) - len(example_of))
        g.forward_batch(losses)
    return g, example_of


def schedule_table(g: Graph, example_of: Sequence[int] | None = None) -> list[dict]:
    """One dict per executed node: ``node, batch, op, signature, batch_size, depth, example``."""
    rows = []
    k = 0
    for plan in g.plans:
        for grp in plan:
            for n in grp:
                rows.append({"node": n, "batch": k, "op": g.op[n], "signature": g.sig[n], "batch_size": len(grp),
                             "depth": g.depth[n], "example": example_of[n] if example_of is not None else -1})
            k += 1
    return rows


def plot_schedule(g: Graph, example_of: Sequence[int], ax: Any = None, title: str | None = None) -> Any:
    """Scatter of (batch index, example) per node, coloured by op; returns the matplotlib axes."""
    import matplotlib.pyplot as plt

    rows = schedule_table(g, example_of)
    ops = sorted({r["op"] for r in rows})
    cmap = plt.get_cmap("tab10" if len(ops) <= 10 else "tab20")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3))
    n_ex = max((r["example"] for r in rows), default=0) + 1
    for j, op in enumerate(ops):
        xs = [r["batch"] for r in rows if r["op"] == op]
        # spread the nodes of one example vertically a little so several nodes per column show
        ys = [r["example"] + 0.8 * ((r["node"] * 0.618) % 1.0) - 0.4 for r in rows if r["op"] == op]
        ax.scatter(xs, ys, s=6, color=cmap(j % cmap.N), label=op)
    n_batches = max((r["batch"] for r in rows), default=0) + 1
    ax.set_xlabel(f"execution step (= one batched kernel); {n_batches} steps for {len(rows)} nodes")
    ax.set_ylabel("example")
    ax.set_yticks(range(n_ex))
    ax.set_title(title or f"strategy {g.strategy_name}")
    ax.legend(fontsize=6, markerscale=2, ncol=2, loc="upper right")
    return ax


def render_batches(g: Graph, path: str | Path, fmt: str = "png", max_nodes: int = 400) -> Path:
    """Render ``g`` with Graphviz, nodes coloured by batch; returns the written file.

    Raises:
        GraphvizMissing: the ``dot`` binary is not installed.
    """
    import shutil

    import graphviz

    if shutil.which("dot") is None:
        raise GraphvizMissing("Graphviz `dot` is not installed: apt-get install graphviz (or conda install graphviz)")
    if len(g) > max_nodes:
        raise ValueError(f"graph has {len(g)} nodes; render_batches draws at most max_nodes={max_nodes}")
    batch_of = g.groups_of()
    size_of: dict[int, int] = {}
    for n, b in batch_of.items():
        size_of[b] = size_of.get(b, 0) + 1
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
               "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2"]
    dot = graphviz.Digraph(graph_attr={"rankdir": "BT", "label": f"strategy={g.strategy_name}: "
                                       f"{len(size_of)} batches for {len(batch_of)} nodes", "fontsize": "10"},
                           node_attr={"style": "filled", "fontsize": "8", "shape": "box", "height": "0.2"})
    for n in range(len(g)):
        op = g.op[n]
        if n in batch_of:
            b = batch_of[n]
            color = palette[b % len(palette)] if size_of[b] > 1 else "white"
            dot.node(str(n), f"{op} b{b}", fillcolor=color)
        else:
            dot.node(str(n), op, fillcolor="lightgrey", shape="ellipse")
        for a in g.args[n]:
            dot.edge(str(a), str(n), arrowsize="0.4")
    path = Path(path)
    out = dot.render(filename=path.stem, directory=str(path.parent), format=fmt, cleanup=True)
    return Path(out)
