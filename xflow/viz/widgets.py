"""Interactive views for notebooks (ipywidgets): explore a result instead of reading one figure.

* :class:`TrajectoryViewer` — a rewrite trajectory: the graph after each step (Graphviz, the
  operators the step created highlighted) beside the cost curve, a step slider (and play button),
  and the per-step diff (rule, removed and added operators, cost change).
* :class:`SparsityExplorer` — Unifews runs over a δ_a × δ_w grid: two sliders pick a cached run;
  accuracy (mean ± std over seeds, or the one seed), edge / weight sparsity and MACs against the
  dense model, and where the run sits among all runs.
* :class:`GanttExplorer` — parallel schedules (predicted, measured): pick the timeline, the
  colouring, a stage or a time window; the chart and per-worker utilisation follow.

Every widget keeps its state in ordinary ipywidgets (``.slider.value``, ``.summary.value``, …), so
tests drive it by setting values and reading the outputs; display it by leaving it as the last
expression of a cell (or ``display(viewer)``). Plots are PNG images rendered server-side
(:func:`xflow.viz.plots.to_png`), so they also appear in a notebook saved with its widget state.
"""
from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from xflow.errors import GraphvizMissing
from xflow.graphs.rendering import GRAPHVIZ_INSTALL_HINT, to_dot
from xflow.viz import plots

__all__ = ["TrajectoryViewer", "SparsityExplorer", "GanttExplorer", "node_diff"]

log = logging.getLogger(__name__)


def _nodes(model: Any) -> list:
    if hasattr(model, "graph"):  # onnx.ModelProto
        return list(model.graph.node)
    if hasattr(model, "nodes"):  # xflow.graphs.Graph
        return list(model.nodes)
    raise TypeError(f"expected an onnx.ModelProto or xflow.graphs.Graph, got {type(model).__name__}")


def node_diff(prev: Any, cur: Any) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(removed, added)`` operators between two graphs as ``(node name, op type)`` pairs.

    Rewrites keep the names of the nodes they do not touch, so a name present in only one graph
    is an operator the step removed or created.
    """
    a = {n.name: n.op_type for n in _nodes(prev)}
    b = {n.name: n.op_type for n in _nodes(cur)}
    return sorted((k, a[k]) for k in a.keys() - b.keys()), sorted((k, b[k]) for k in b.keys() - a.keys())


def _svg_of(model: Any, highlight: Sequence[str], around: Sequence[str] | None, radius: int) -> str:
    """The graph as inline SVG text (raises GraphvizMissing without ``dot``)."""
    import shutil

    if shutil.which("dot") is None:
        raise GraphvizMissing(f"Graphviz 'dot' is not on PATH; {GRAPHVIZ_INSTALL_HINT}")
    svg = to_dot(model, highlight=list(highlight), around=list(around) if around else None,
                 radius=radius).pipe(format="svg").decode()
    return svg[svg.find("<svg"):]


def _ops(pairs: Sequence[tuple[str, str]], limit: int = 8) -> str:
    if not pairs:
        return "—"
    shown = ", ".join(f"{html.escape(op)} <code>{html.escape(name)}</code>" for name, op in pairs[:limit])
    return shown + (f" … (+{len(pairs) - limit})" if len(pairs) > limit else "")


class TrajectoryViewer:
    """Step through a rewrite trajectory: graph and cost curve side by side, slider, per-step diff.

    Args:
        models: the graph after each step (``models[0]`` the original), ModelProtos or Graphs.
        costs: predicted cost after each step (same length; any unit, shown relative to step 0).
        rules: the rule applied at each step (``len(models) - 1`` entries, or ``len(models)`` with a
            leading ``None``).
        measured: optional measured latency after each step (shown relative to step 0).
        radius: hops drawn around the changed operators (the whole graph when it has at most
            ``full_graph_nodes`` nodes).
        title: caption above the widget.
    """

    def __init__(self, models: Sequence[Any], costs: Sequence[float], rules: Sequence[str | None] | None = None, *,
                 measured: Sequence[float] | None = None, radius: int = 2, full_graph_nodes: int = 40,
                 title: str | None = None) -> None:
        import ipywidgets as w

        if not models:
            raise ValueError("TrajectoryViewer: no models (a trajectory has at least the original graph)")
        n = len(models)
        if len(costs) != n:
            raise ValueError(f"TrajectoryViewer: {len(costs)} costs for {n} graphs (one cost per graph)")
        rules = list(rules or [])
        if len(rules) == n - 1:
            rules = [None, *rules]
        if len(rules) != n:
            rules = [None] + [None] * (n - 1)
        if measured is not None and len(measured) != n:
            raise ValueError(f"TrajectoryViewer: {len(measured)} measured latencies for {n} graphs")
        self.models, self.costs, self.rules = list(models), [float(c) for c in costs], rules
        self.measured = [float(x) for x in measured] if measured is not None else None
        self.radius, self.full_graph_nodes = radius, full_graph_nodes
        self._svg_cache: dict[int, str] = {}
        self.slider = w.IntSlider(value=n - 1, min=0, max=n - 1, description="step", continuous_update=False,
                                  layout=w.Layout(width="420px"))
        self.play = w.Play(value=n - 1, min=0, max=n - 1, interval=900, description="play")
        w.jslink((self.play, "value"), (self.slider, "value"))
        self.graph = w.HTML(layout=w.Layout(max_height="520px", overflow="auto", width="55%",
                                            border="1px solid #ddd"))
        self.curve = w.Image(format="png", layout=w.Layout(width="45%"))
        self.diff = w.HTML()
        head = [w.HTML(f"<b>{html.escape(title)}</b>")] if title else []
        self.widget = w.VBox([*head, w.HBox([self.play, self.slider]), w.HBox([self.graph, self.curve]),
                              self.diff])
        self.slider.observe(lambda ch: self.show(ch["new"]), names="value")
        self.show(self.slider.value)

    @property
    def step(self) -> int:
        """The step shown."""
        return int(self.slider.value)

    def diff_at(self, step: int) -> dict[str, Any]:
        """What step ``step`` changed: rule, removed/added operators, cost before and after."""
        if step == 0:
            return {"step": 0, "rule": None, "removed": [], "added": [], "cost_before": self.costs[0],
                    "cost_after": self.costs[0]}
        removed, added = node_diff(self.models[step - 1], self.models[step])
        return {"step": step, "rule": self.rules[step], "removed": removed, "added": added,
                "cost_before": self.costs[step - 1], "cost_after": self.costs[step]}

    def _graph_html(self, step: int, d: Mapping[str, Any]) -> str:
        if step not in self._svg_cache:
            added = [n for n, _ in d["added"]]
            if not added and step + 1 < len(self.models):  # show where the next step will act
                around = [n for n, _ in node_diff(self.models[step], self.models[step + 1])[0]]
            else:
                around = added
            small = len(_nodes(self.models[step])) <= self.full_graph_nodes
            try:
                self._svg_cache[step] = _svg_of(self.models[step], added, None if small or not around else around,
                                                self.radius)
            except Exception as exc:  # noqa: BLE001 - Graphviz missing or failing: say so, keep the rest
                self._svg_cache[step] = f"<p><i>no graph rendering: {html.escape(str(exc))}</i></p>"
        return self._svg_cache[step]

    def _curve_png(self, step: int) -> bytes:
        fig, ax = plots.figure(width=3.6, height=2.6)
        steps = np.arange(len(self.costs))
        c0 = self.costs[0] or 1.0
        ax.plot(steps, np.asarray(self.costs) / c0, marker="o", label="predicted cost")
        if self.measured is not None:
            m0 = self.measured[0] or 1.0
            ax.plot(steps, np.asarray(self.measured) / m0, marker="s", label="measured latency")
        ax.axvline(step, color="#D55E00", lw=1.2, ls="--", label=f"step {step}")
        ax.set(xlabel="step", ylabel="relative to the original")
        ax.set_xticks(steps if len(steps) <= 12 else steps[:: max(1, len(steps) // 10)])
        plots.legend_outside(ax, where="above", ncol=3)
        return plots.to_png(fig)

    def show(self, step: int) -> None:
        """Show step ``step`` (also what moving the slider does)."""
        step = int(step)
        d = self.diff_at(step)
        self.graph.value = self._graph_html(step, d)
        self.curve.value = self._curve_png(step)
        c0 = self.costs[0] or 1.0
        change = (d["cost_after"] - d["cost_before"]) / c0 * 100
        meas = ""
        if self.measured is not None:
            meas = f"; measured {self.measured[step] / (self.measured[0] or 1):.3f}× the original"
        if step == 0:
            head = "<b>step 0</b>: the original graph"
        else:
            head = (f"<b>step {step}</b>: <code>{html.escape(str(d['rule']))}</code> — predicted cost "
                    f"{d['cost_before'] / c0:.4f} → {d['cost_after'] / c0:.4f} of the original "
                    f"({change:+.2f} points)")
        self.diff.value = (f"<div>{head}{meas}<br>removed: {_ops(d['removed'])}<br>added: {_ops(d['added'])}"
                           f"<br><small>{len(_nodes(self.models[step]))} operators</small></div>")

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


class SparsityExplorer:
    """δ_a / δ_w sliders over cached Unifews runs → accuracy, sparsity and MACs.

    ``frame`` has one row per run (wide format, e.g. :func:`xflow.sparsify.to_wide` of a sweep's
    records) with columns ``delta_a``, ``delta_w``, ``test_acc``, ``edge_sparsity``,
    ``weight_sparsity``, ``macs`` and optionally ``seed``, ``dataset``, ``model``. The dense run is
    the one at δ_a = δ_w = 0. The sliders offer exactly the grid values that have runs.
    """

    GROUP = ("dataset", "model")

    def __init__(self, frame: Any, *, title: str | None = None) -> None:
        import ipywidgets as w
        import pandas as pd

        df = pd.DataFrame(frame).copy()
        need = {"delta_a", "delta_w", "test_acc", "edge_sparsity", "weight_sparsity", "macs"}
        missing = sorted(need - set(df.columns))
        if missing:
            raise ValueError(f"SparsityExplorer: the runs lack column(s) {', '.join(missing)}")
        if df.empty:
            raise ValueError("SparsityExplorer: no runs (run the sparsify sweep first)")
        for c in ("delta_a", "delta_w"):
            df[c] = df[c].astype(float)
        self.frame = df
        self.group_cols = [c for c in self.GROUP if c in df.columns]
        groups = list(dict.fromkeys(map(tuple, df[self.group_cols].itertuples(index=False)))) if self.group_cols \
            else [()]
        self.group = w.Dropdown(options=[(" · ".join(map(str, g)) or "all runs", g) for g in groups],
                                description="runs", layout=w.Layout(width="260px"))
        da, dw = sorted(df.delta_a.unique()), sorted(df.delta_w.unique())
        self.delta_a = w.SelectionSlider(options=[(f"{v:g}", v) for v in da], value=da[-1], description="δ_a",
                                         continuous_update=False)
        self.delta_w = w.SelectionSlider(options=[(f"{v:g}", v) for v in dw], value=dw[-1], description="δ_w",
                                         continuous_update=False)
        self.summary = w.HTML()
        self.plot = w.Image(format="png")
        head = [w.HTML(f"<b>{html.escape(title)}</b>")] if title else []
        self.widget = w.VBox([*head, w.HBox([self.group, self.delta_a, self.delta_w]),
                              w.HBox([self.plot, self.summary])])
        for ctl in (self.group, self.delta_a, self.delta_w):
            ctl.observe(lambda _ch: self.update(), names="value")
        self.value: dict[str, Any] = {}
        self.update()

    def _runs(self):
        df = self.frame
        for c, v in zip(self.group_cols, self.group.value):
            df = df[df[c] == v]
        return df

    def selection(self) -> dict[str, Any]:
        """Numbers of the selected (δ_a, δ_w): accuracy mean/std/n over seeds, sparsities, MACs, and
        the dense run's accuracy and MACs (``None`` where there is no such run)."""
        runs = self._runs()
        sel = runs[np.isclose(runs.delta_a, self.delta_a.value) & np.isclose(runs.delta_w, self.delta_w.value)]
        dense = runs[(runs.delta_a == 0) & (runs.delta_w == 0)]
        out: dict[str, Any] = {"delta_a": float(self.delta_a.value), "delta_w": float(self.delta_w.value),
                               "group": self.group.value, "n": int(len(sel))}
        if len(sel):
            acc = sel.test_acc.astype(float)
            out.update(acc=float(acc.mean()), acc_std=float(acc.std(ddof=1)) if len(sel) >= 2 else None,
                       edge_sparsity=float(sel.edge_sparsity.mean()), weight_sparsity=float(sel.weight_sparsity.mean()),
                       macs=float(sel.macs.mean()))
        out["dense_acc"] = float(dense.test_acc.mean()) if len(dense) else None
        out["dense_macs"] = float(dense.macs.mean()) if len(dense) else None
        return out

    def _summary_html(self, s: Mapping[str, Any]) -> str:
        if not s["n"]:
            return (f"<p>no cached run at δ_a = {s['delta_a']:g}, δ_w = {s['delta_w']:g} for "
                    f"{html.escape(' · '.join(map(str, s['group'])))}: add the pair to the sweep grid "
                    "(<code>DELTA_A</code>, <code>DELTA_W</code>) and re-run.</p>")
        acc = f"{100 * s['acc']:.1f} %"
        acc += f" ± {100 * s['acc_std']:.1f} (std over {s['n']} seeds)" if s["acc_std"] is not None else " (1 seed)"
        rows = [("test accuracy", acc)]
        if s["dense_acc"] is not None:
            rows.append(("vs dense", f"{100 * (s['acc'] - s['dense_acc']):+.1f} points"))
        rows += [("edge sparsity", f"{100 * s['edge_sparsity']:.1f} %"),
                 ("weight sparsity", f"{100 * s['weight_sparsity']:.1f} %"),
                 ("MACs", f"{s['macs']:.3g}")]
        if s["dense_macs"]:
            rows.append(("MACs vs dense", f"{s['macs'] / s['dense_macs']:.3f}× ({1 - s['macs'] / s['dense_macs']:.1%} fewer)"))
        body = "".join(f"<tr><td>{k}</td><td style='text-align:right'>{v}</td></tr>" for k, v in rows)
        return f"<table>{body}</table>"

    def _plot_png(self, s: Mapping[str, Any]) -> bytes:
        runs = self._runs()
        g = runs.groupby(["delta_a", "delta_w"])[["macs", "test_acc"]].mean().reset_index()
        fig, ax = plots.figure(width=3.8, height=2.7)
        ax.scatter(g.macs, 100 * g.test_acc, color="#999999", s=14, label="other (δ_a, δ_w)")
        dense = g[(g.delta_a == 0) & (g.delta_w == 0)]
        if len(dense):
            ax.scatter(dense.macs, 100 * dense.test_acc, color="black", marker="*", s=60, label="dense")
        if s["n"]:
            ax.scatter([s["macs"]], [100 * s["acc"]], color="#D55E00", marker="o", s=50, zorder=3,
                       label=f"δ_a={s['delta_a']:g}, δ_w={s['delta_w']:g}")
        if plots.auto_log(g.macs, threshold=5):
            ax.set_xscale("log")
        ax.set(xlabel="MACs per inference", ylabel="test accuracy (%)")
        plots.legend_outside(ax, where="above", ncol=2)
        return plots.to_png(fig)

    def update(self) -> None:
        """Recompute the summary and the plot for the current selection (what the sliders trigger)."""
        s = self.selection()
        self.value = s
        self.summary.value = self._summary_html(s)
        self.plot.value = self._plot_png(s)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


class GanttExplorer:
    """Interactive Gantt of parallel schedules: timeline, colouring, stage / time window, utilisation.

    ``timelines`` maps a label (``"predicted"``, ``"measured"``) to events with ``worker``,
    ``start_ms``, ``end_ms`` and the colour keys (``op``, ``stage``, e.g.
    :class:`xflow.parallel.timeline.Event`). Colours are shared across timelines, so the same
    operator has the same colour in both.
    """

    def __init__(self, timelines: Mapping[str, Sequence[Any]], *, keys: Sequence[str] = ("op", "stage"),
                 max_keys: int = 8, title: str | None = None) -> None:
        import ipywidgets as w

        self.timelines = {k: list(v) for k, v in timelines.items() if len(v)}
        if not self.timelines:
            raise ValueError("GanttExplorer: no events in any timeline")
        first = next(iter(self.timelines.values()))[0]
        self.keys = [k for k in keys if plots._has(first, k)] or ["worker"]
        self.max_keys = max_keys
        self.timeline = w.ToggleButtons(options=list(self.timelines), description="schedule")
        self.color_by = w.Dropdown(options=self.keys, value=self.keys[0], description="colour by",
                                   layout=w.Layout(width="200px"))
        self.stage = w.Dropdown(options=[("all", None)], value=None, description="stage",
                                layout=w.Layout(width="200px"))
        self.window = w.FloatRangeSlider(description="window ms", continuous_update=False, readout_format=".2f",
                                         layout=w.Layout(width="520px"))
        self.plot = w.Image(format="png")
        self.info = w.HTML()
        head = [w.HTML(f"<b>{html.escape(title)}</b>")] if title else []
        self.widget = w.VBox([*head, self.timeline, w.HBox([self.color_by, self.stage]), self.window, self.plot,
                              self.info])
        self._busy = False
        self._reset_window()
        self.timeline.observe(lambda _c: self._reset_window(), names="value")
        self.stage.observe(lambda _c: self._zoom_stage(), names="value")
        self.color_by.observe(lambda _c: self.update(), names="value")
        self.window.observe(lambda _c: self.update(), names="value")
        self.value: dict[str, Any] = {}
        self.update()

    @property
    def events(self) -> list[Any]:
        """Events of the selected timeline."""
        return self.timelines[self.timeline.value]

    def _reset_window(self) -> None:
        self._busy = True
        try:
            ev = self.events
            end = max(float(plots._get(e, "end_ms")) for e in ev)
            self.window.min, self.window.max = 0.0, 0.0
            self.window.max = end
            self.window.step = max(end / 400, 1e-3)
            self.window.value = (0.0, end)
            stages = sorted({int(plots._get(e, "stage")) for e in ev}) if plots._has(ev[0], "stage") else []
            self.stage.options = [("all", None)] + [(f"stage {s}", s) for s in stages]
            self.stage.value = None
        finally:
            self._busy = False
        self.update()

    def _zoom_stage(self) -> None:
        ev = self.events
        st = self.stage.value
        if st is None:
            lo, hi = 0.0, self.window.max
        else:
            sel = [e for e in ev if int(plots._get(e, "stage")) == st]
            lo = min(float(plots._get(e, "start_ms")) for e in sel)
            hi = max(float(plots._get(e, "end_ms")) for e in sel)
            pad = 0.02 * (hi - lo or 1.0)
            lo, hi = max(0.0, lo - pad), min(self.window.max, hi + pad)
        self.window.value = (lo, hi)

    def utilisation(self, lo: float | None = None, hi: float | None = None) -> dict[str, Any]:
        """Per-worker busy time and share of the window ``[lo, hi]`` (default: the slider's)."""
        if lo is None or hi is None:
            lo, hi = self.window.value
        span = max(hi - lo, 1e-9)
        busy: dict[int, float] = {}
        n_ev = 0
        by_key: dict[Any, float] = {}
        key = self.color_by.value
        for e in self.events:
            s, t = max(float(plots._get(e, "start_ms")), lo), min(float(plots._get(e, "end_ms")), hi)
            if t <= s:
                continue
            n_ev += 1
            w_ = int(plots._get(e, "worker"))
            busy[w_] = busy.get(w_, 0.0) + (t - s)
            k = plots._get(e, key)
            by_key[k] = by_key.get(k, 0.0) + (t - s)
        makespan = max(float(plots._get(e, "end_ms")) for e in self.events)
        return {"timeline": self.timeline.value, "window": (lo, hi), "makespan_ms": makespan, "events": n_ev,
                "busy_ms": dict(sorted(busy.items())),
                "utilisation": {k: v / span for k, v in sorted(busy.items())},
                "top": sorted(by_key.items(), key=lambda kv: -kv[1])[:5]}

    def update(self) -> None:
        """Redraw the chart and the utilisation table for the current controls."""
        if self._busy:
            return
        lo, hi = self.window.value
        key = self.color_by.value
        colors = plots.gantt_colors(*self.timelines.values(), key=key, max_keys=self.max_keys)
        ev = [e for e in self.events if float(plots._get(e, "end_ms")) > lo and float(plots._get(e, "start_ms")) < hi]
        n_workers = len({int(plots._get(e, "worker")) for e in self.events})
        fig, ax = plots.figure(width=7.0, height=0.9 + 0.45 * max(n_workers, 1))
        plots.gantt(ax, ev or self.events[:1], key=key, colors=colors, xlim=(lo, hi), legend_title=key,
                    title=f"{self.timeline.value}: makespan {max(float(plots._get(e, 'end_ms')) for e in self.events):.2f} ms")
        self.plot.value = plots.to_png(fig)
        u = self.utilisation(lo, hi)
        self.value = u
        rows = "".join(f"<tr><td>worker {k}</td><td style='text-align:right'>{u['busy_ms'][k]:.2f} ms</td>"
                       f"<td style='text-align:right'>{100 * v:.0f} %</td></tr>" for k, v in u["utilisation"].items())
        top = ", ".join(f"{html.escape(str(k))} {v:.2f} ms" for k, v in u["top"])
        self.info.value = (f"<p>window {lo:.2f}–{hi:.2f} ms: {u['events']} events; busiest {html.escape(key)}s: "
                           f"{top}</p><table><tr><th></th><th>busy</th><th>of window</th></tr>{rows}</table>")

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

