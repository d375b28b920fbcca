"""Paper-quality figures, the same way in every notebook.

Rules every helper here follows (and :func:`layout_problems` checks):

* **spread wherever there are repeats** — bars carry an interval (a bootstrap CI of a ratio, or the
  IQR of repeated timings), curves a band; a single seed is *said*, not drawn as an interval;
* **log axes where values span orders of magnitude** (:func:`auto_log`: max/min ≥ 10), ratio axes
  labelled ``0.5×, 1×, 2×``;
* **speed-ups start at 1×** (the baseline), not at 0, so a 3 % difference is visible;
* **legends outside the data** (:func:`legend_outside`), **shared axes where panels compare**,
  **no clipped or overlapping labels** (constrained layout, tight saving, wrapped tick labels).

:func:`save` writes ``figures/<name>.png`` atomically with the result files it was drawn from
(``Source``) and the git commit in the PNG metadata, then shows the figure inline when running in
a notebook — notebooks never force the Agg backend.
"""
from __future__ import annotations

import io
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np

from xflow import __version__, paths
from xflow.errors import XflowError
from xflow.results import git_sha

__all__ = [
    "PALETTE", "COLUMN_IN", "PAGE_IN", "STYLE", "FigureLayoutError", "use_style", "figure", "save", "to_png",
    "legend_outside", "legend_entries", "readable", "wrap", "fit_ticklabels", "speedup_frame", "speedup_bars", "grouped_bars", "gantt", "gantt_colors",
    "learning_curve", "mean_spread", "spread_label", "errorbar_curve", "heatmap", "layout_problems",
    "auto_log", "ratio_axis", "log_axis",
]

log = logging.getLogger(__name__)

#: Okabe–Ito colours (distinguishable with the common colour-vision deficiencies), grey last.
PALETTE: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9",
                            "#F0E442", "#000000", "#999999")
OTHER_COLOR = "#C8C8C8"
#: Figure widths (inches) of one column and of a full page of a two-column paper.
COLUMN_IN = 3.4
PAGE_IN = 7.0

STYLE: dict[str, Any] = {
    "figure.dpi": 110, "savefig.dpi": 200, "savefig.bbox": "tight", "savefig.pad_inches": 0.03,
    "figure.constrained_layout.use": True,
    "font.size": 8.5, "axes.titlesize": 9, "axes.labelsize": 8.5, "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5, "legend.fontsize": 7.5, "legend.title_fontsize": 8, "legend.frameon": False,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
    "grid.linewidth": 0.5, "axes.axisbelow": True, "axes.titlelocation": "left",
    "lines.linewidth": 1.4, "lines.markersize": 4, "errorbar.capsize": 2, "patch.linewidth": 0.6,
    "pdf.fonttype": 42, "ps.fonttype": 42, "image.cmap": "viridis",
}

#: How a bar shows its verdict: solid when the interval clears the noise floor, pale with a dashed
#: outline when the difference is within noise (``same``). Hatches stay free to encode a series.
VERDICT_STYLE = {"faster": dict(alpha=1.0, linestyle="-"), "slower": dict(alpha=1.0, linestyle="-"),
                 "same": dict(alpha=0.3, linestyle="--"), "n/a": dict(alpha=0.8, linestyle="-"),
                 "pruned": dict(alpha=0.8, linestyle="-", hatch=".."),
                 "baseline": dict(alpha=0.8, linestyle="-")}


class FigureLayoutError(XflowError):
    """A figure has overlapping tick labels, a squashed panel or a legend over the data."""


# -- style, figures, saving ---------------------------------------------------------------------
def use_style() -> None:
    """Apply the paper style (:data:`STYLE`, :data:`PALETTE` colour cycle) to matplotlib's rcParams."""
    from cycler import cycler

    mpl.rcParams.update(STYLE)
    mpl.rcParams["axes.prop_cycle"] = cycler(color=list(PALETTE))


def figure(nrows: int = 1, ncols: int = 1, *, width: str | float = "page", height: float | None = None,
           sharex: bool | str = False, sharey: bool | str = False, squeeze: bool = True, **kw: Any):
    """``(fig, axes)`` in the paper style, ``width`` ``"page"`` (7 in), ``"column"`` (3.4 in) or inches.

    The height defaults to a 0.62 aspect per panel (clamped to 1.8–9 in). Share axes (``sharex`` /
    ``sharey``) whenever panels are meant to be compared.
    """
    import matplotlib.pyplot as plt

    use_style()
    w = {"page": PAGE_IN, "column": COLUMN_IN}.get(width, width) if isinstance(width, str) else float(width)
    if height is None:
        height = min(9.0, max(1.8, nrows * (w / ncols) * 0.62 + 0.2))
    return plt.subplots(nrows, ncols, figsize=(w, height), sharex=sharex, sharey=sharey, squeeze=squeeze,
                        layout="constrained", **kw)


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with ipykernel
        return False
    ip = get_ipython()
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def _sources(source: Any) -> list[str]:
    """Result files a figure was drawn from: paths, strings, or frames carrying ``attrs['source']``."""
    if source is None:
        return []
    if isinstance(source, (str, os.PathLike)):
        return [str(source)]
    attrs = getattr(source, "attrs", None)
    if isinstance(attrs, Mapping):
        s = attrs.get("source")
        return _sources(s) if s is not None else []
    if isinstance(source, Iterable):
        return [x for s in source for x in _sources(s)]
    return [str(source)]


def _relative(p: str) -> str:
    try:
        return str(Path(p).resolve().relative_to(paths.repo_root()))
    except ValueError:
        return p


def save(fig, name: str, *, source: Any = None, show: bool | None = None, formats: Sequence[str] = ("png",),
         check: bool = True, directory: Path | None = None) -> Path:
    """Write ``fig`` to ``figures/<name>.<fmt>`` (atomically), show it inline in a notebook, close it.

    ``source`` names the result files the figure was drawn from (paths, or frames returned by
    :func:`xflow.notebooks.record_results`, which carry ``attrs['source']``); they go into the
    file's metadata with the git commit, so a figure can be traced back to its numbers.
    With ``check`` the layout is checked (:func:`layout_problems`): problems are logged, and raise
    :class:`FigureLayoutError` (after writing, so the figure can be looked at) when
    ``$XFLOW_STRICT_FIGURES=1`` (the notebook tests set it).
    Returns the path of the first format.
    """
    import matplotlib.pyplot as plt

    if check:
        fit_ticklabels(fig)
    problems = layout_problems(fig) if check else []
    out_dir = Path(directory) if directory is not None else paths.figures_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    src = "; ".join(_relative(s) for s in _sources(source)) or "not recorded"
    software = f"xflow {__version__} (git {git_sha()})"
    written = []
    for fmt in formats:
        meta = {"png": {"Title": name, "Software": software, "Source": src},
                "pdf": {"Title": name, "Creator": software, "Subject": f"source: {src}"},
                "svg": {"Title": name, "Creator": software, "Source": src}}.get(fmt)
        out = out_dir / f"{name}.{fmt}"
        tmp = out_dir / f".{name}.{os.getpid()}.{fmt}.tmp"
        try:
            fig.savefig(tmp, format=fmt, metadata=meta)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        written.append(out)
    if show if show is not None else _in_notebook():
        from IPython.display import display

        display(fig)
    plt.close(fig)
    if problems:
        msg = f"figure {name!r} ({written[0]}): " + "; ".join(problems)
        if os.environ.get("XFLOW_STRICT_FIGURES") == "1":
            raise FigureLayoutError(msg + " (fix the layout; XFLOW_STRICT_FIGURES=1 makes this an error)")
        log.warning(msg)
    return written[0]


def to_png(fig, *, dpi: int = 144, close: bool = True) -> bytes:
    """PNG bytes of ``fig`` (for image widgets: 144 dpi stays sharp when the browser scales it up);
    closes the figure by default."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    if close:
        plt.close(fig)
    return buf.getvalue()


def legend_outside(target, *, where: str = "right", title: str | None = None, handles: list | None = None,
                   labels: list[str] | None = None, ncol: int | None = None, **kw: Any):
    """A legend outside the data: right of (or above) an axes, or outside a whole figure.

    ``target`` is an ``Axes`` (``where`` ``"right"`` or ``"above"``) or a ``Figure`` (``where``
    ``"right"``, ``"below"`` or ``"above"``; use it for one legend shared by several panels).
    Constrained layout makes room for it, so nothing is clipped. ``"above"`` on the only panel of a
    figure becomes a figure legend above the title; on one of several panels it lifts that
    panel's title over the legend (so set the title first).
    """
    from matplotlib.figure import Figure

    if handles is None:
        axes = target.axes if isinstance(target, Figure) else [target]
        seen: dict[str, Any] = {}
        for ax in axes:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                if not lab.startswith("_") and lab not in seen:
                    seen[lab] = h
        handles, labels = list(seen.values()), list(seen)
    elif labels is None:
        labels = [h.get_label() for h in handles]
    if not handles:
        return None
    if isinstance(target, Figure):
        loc = {"right": "outside right center", "below": "outside lower center",
               "above": "outside upper center"}[where]
        if ncol is None:
            ncol = 1 if where == "right" else min(len(handles), 5)
        return target.legend(handles, labels, loc=loc, title=title, ncol=ncol, **kw)
    if where == "right":
        return target.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
                             title=title, ncol=ncol or 1, **kw)
    if where == "above":
        fig = target.figure
        panels = [a for a in fig.axes if a.get_visible() and not _is_colorbar(a)]
        if panels == [target]:  # one panel: a figure legend sits above the panel's title
            return fig.legend(handles, labels, loc="outside upper center", title=title,
                              ncol=ncol or min(len(handles), 3), **kw)
        leg = target.legend(handles, labels, loc="lower left", bbox_to_anchor=(0.0, 1.02), borderaxespad=0.0,
                            title=title, ncol=ncol or min(len(handles), 3), **kw)
        fig.canvas.draw()  # lift the panel's title above the legend (set the title before this call)
        height_pt = leg.get_window_extent().height * 72.0 / fig.dpi
        for loc in ("left", "center", "right"):
            if target.get_title(loc=loc):
                target.set_title(target.get_title(loc=loc), loc=loc, pad=height_pt + mpl.rcParams["axes.titlepad"] + 2)
        return leg
    raise ValueError(f"legend_outside: where must be 'right' or 'above' for an Axes, got {where!r}")


def readable(name: Any, labels: Mapping[Any, str] | None = None, *, width: int = 18) -> str:
    """A short, wrapped label: ``labels[name]`` if given, else the name without a ``builder:`` prefix,
    with a ``?k=v&…`` query shown as ``(k=v, …)`` and the text wrapped at ``width`` characters."""
    if labels and name in labels:
        return wrap(str(labels[name]), width)
    s = str(name)
    if s.startswith("builder:"):
        s = s[len("builder:"):]
    if "?" in s:
        base, query = s.split("?", 1)
        s = f"{base} ({', '.join(query.split('&'))})"
    return wrap(s, width)


def wrap(text: str, width: int = 18) -> str:
    """Wrap ``text`` at ``width`` characters, breaking after spaces, underscores, commas and slashes
    (identifiers like ``mobilenet_v3_small`` wrap too; no word is cut)."""
    lines: list[str] = []
    cur = ""
    for tok in re.split(r"(?<=[ _,/])", text):
        if cur and len(cur) + len(tok.rstrip()) > width:
            lines.append(cur.rstrip())
            cur = tok
        else:
            cur += tok
    if cur.strip():
        lines.append(cur.rstrip())
    return "\n".join(lines) or text


# -- axes helpers -------------------------------------------------------------------------------
def auto_log(values: Iterable[float], *, threshold: float = 10.0) -> bool:
    """Whether positive ``values`` span at least ``threshold``× (then a log axis reads better)."""
    v = np.asarray([x for x in np.ravel(np.asarray(list(values), dtype=float)) if np.isfinite(x) and x > 0])
    return bool(v.size >= 2 and v.max() / v.min() >= threshold)


def _nice_log_ticks(lo: float, hi: float, min_gap: float = 0.0) -> list[float]:
    """Tick positions for a log axis over ``[lo, hi]``: 1-2-5 steps (1-3 over 1.5+ decades, powers of
    ten over 3.5+), finer when that gives < 3 ticks or leaves an end of the axis unlabelled.

    ``min_gap`` (decades) is the closest two neighbouring ticks may be, so that their labels do not
    collide on a short axis (:func:`_log_tick_gap`); a finer step that packs ticks closer is skipped.
    """
    e0, e1 = math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1
    if e1 - e0 > 8:
        step = math.ceil((e1 - e0) / 8)
        return [10.0 ** e for e in range(e0, e1 + 1, step) if lo <= 10.0 ** e <= hi]
    span = math.log(hi / lo)
    decades = span / math.log(10)
    fine = ((1, 2, 5), (1, 1.5, 2, 3, 5, 7), (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9))
    # coarser steps over wide ranges: at most about seven labels on an axis
    seqs = ((1,), (1, 3), *fine) if decades >= 3.5 else ((1, 3), *fine) if decades >= 1.5 else fine

    def readable(ticks: list[float]) -> bool:
        return all(math.log10(b / a) >= min_gap for a, b in zip(ticks, ticks[1:]))

    candidates = [[k * 10.0 ** e for e in range(e0, e1 + 1) for k in subs if lo <= k * 10.0 ** e <= hi]
                  for subs in seqs]
    enough = []
    for ticks in candidates:
        if len(ticks) >= 3 and readable(ticks):
            # both ends labelled: no more than a quarter of the axis without a tick at either side
            if math.log(ticks[0] / lo) <= 0.25 * span and math.log(hi / ticks[-1]) <= 0.25 * span:
                return ticks
            enough.append(ticks)
    if enough:
        return enough[0]
    sparse = [t for t in candidates if len(t) >= 2 and readable(t)]  # too short an axis for three labels
    if sparse:
        return sparse[0]
    return [lo, 1.0, hi] if lo < 1 < hi else [lo, hi]


def _log_tick_gap(ax, axis: str, lo: float, hi: float) -> float:
    """The smallest tick spacing (decades) at which ``ax``'s ``axis`` labels over ``[lo, hi]`` stay
    apart: two label heights of the tick font on the axis' current length (upright labels on y,
    the text width being unknown before drawing on x, so the same bound)."""
    import matplotlib as mpl
    from matplotlib.font_manager import FontProperties

    size = FontProperties(size=mpl.rcParams[f"{axis}tick.labelsize"]).get_size_in_points()
    box = ax.get_window_extent()
    length_px = box.height if axis == "y" else box.width
    if length_px <= 0 or hi <= lo:
        return 0.0
    return 2.0 * size * ax.figure.dpi / 72.0 / length_px * math.log10(hi / lo)


def _plain(v: float, _pos: Any = None) -> str:
    """Tick text without exponents for everyday ranges (0.002 … 99999), engineering above."""
    if v == 0 or 1e-3 <= abs(v) < 1e5:
        return f"{v:.6g}"
    from matplotlib.ticker import EngFormatter

    return EngFormatter(sep="")(v)


def _times_fmt(v: float, _pos: Any = None) -> str:
    return f"{v:.3g}×"


def ratio_axis(ax, values: Iterable[float], *, axis: str = "y", log: bool | None = None, pad: float = 0.08,
               include_one: bool = True) -> bool:
    """Scale and limit a ratio axis (speed-ups, latency / baseline) around ``values`` and 1×.

    Log scale when ``log`` is true or (``None``) when the values span ≥ 3× (a log axis shows
    "2× faster" and "2× slower" alike); ticks read
    ``0.5×, 1×, 2×``. Limits hug the data (never 0 on a linear axis), so small differences show;
    on panels that share the axis they hold the values of every panel drawn so far.
    Returns whether the axis is logarithmic.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter, NullLocator

    v = np.asarray([x for x in np.ravel(np.asarray(list(values), dtype=float)) if np.isfinite(x) and x > 0])
    if include_one:
        v = np.append(v, 1.0)
    if v.size == 0:
        v = np.array([1.0])
    # panels sharing this axis (sharex/sharey): the limits must hold every panel's values, not only
    # the last one drawn (else its neighbours' bars run off the axis)
    key = f"_xflow_ratio_values_{axis}"
    setattr(ax, key, v)
    group = (ax.get_shared_y_axes() if axis == "y" else ax.get_shared_x_axes()).get_siblings(ax)
    v = np.concatenate([getattr(a, key) for a in group if hasattr(a, key)])
    log = auto_log(v, threshold=3.0) if log is None else log
    lo, hi = float(v.min()), float(v.max())
    ax_ = ax.yaxis if axis == "y" else ax.xaxis
    set_lim = ax.set_ylim if axis == "y" else ax.set_xlim
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log" if log else "linear")
    if log:
        f = math.exp(pad * max(math.log(hi / lo), math.log(1.1)))
        lo, hi = lo / f, hi * f
        set_lim(lo, hi)
        ax_.set_major_locator(FixedLocator(_nice_log_ticks(lo, hi, _log_tick_gap(ax, axis, lo, hi))))
        ax_.set_minor_locator(NullLocator())
        ax_.set_minor_formatter(NullFormatter())
    else:
        span = max(hi - lo, 0.02 * hi)
        lo, hi = lo - pad * span, hi + pad * span
        set_lim(max(lo, 0.0), hi)
        ax_.set_major_locator(MaxNLocator(6, steps=[1, 2, 2.5, 5, 10]))
    ax_.set_major_formatter(FuncFormatter(_times_fmt))
    return bool(log)


def log_axis(ax, axis: str = "y", *, values: Iterable[float] | None = None, unit: str = "", eng: bool = False) -> None:
    """A readable log axis: ticks at 1-2-5 steps (or finer when the range is narrow), labelled
    plainly (``0.2, 1, 5``) or in engineering notation (``eng=True``: ``20k, 2M``), no minor labels."""
    from matplotlib.ticker import EngFormatter, FixedLocator, FuncFormatter, NullFormatter, NullLocator

    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    if values is not None:
        v = np.asarray([x for x in np.ravel(np.asarray(list(values), dtype=float)) if np.isfinite(x) and x > 0])
        if v.size:
            f = math.exp(0.08 * max(math.log(v.max() / v.min()), math.log(1.5)))
            (ax.set_ylim if axis == "y" else ax.set_xlim)(v.min() / f, v.max() * f)
    lo, hi = sorted(ax.get_ylim() if axis == "y" else ax.get_xlim())
    a = ax.yaxis if axis == "y" else ax.xaxis
    a.set_major_locator(FixedLocator(_nice_log_ticks(lo, hi, _log_tick_gap(ax, axis, lo, hi))))
    a.set_minor_locator(NullLocator())
    a.set_minor_formatter(NullFormatter())
    a.set_major_formatter(EngFormatter(unit=unit, sep="") if eng else FuncFormatter(lambda x, _p: f"{_plain(x)}{unit}"))


# -- bars ---------------------------------------------------------------------------------------
def speedup_frame(df, *, what: str = "speedup"):
    """Normalise measurement records to columns ``speedup, lo, hi, verdict`` (``what="speedup"``) or
    ``ratio, lo, hi, verdict`` (``what="ratio"``: time / baseline time).

    Accepts the measurement core's rows (``ratio, ci_lo, ci_hi, verdict``; see
    :meth:`xflow.runtime.measure.Measurement.records`), rows with ``speedup`` (or ``value``) and
    ``speedup_lo, speedup_hi``, or bare ``value`` rows (then ``lo``/``hi`` are NaN and the verdict ``n/a``:
    no interval is drawn, and the legend says so).
    """
    import pandas as pd

    d = pd.DataFrame(df).copy()
    cols = set(d.columns)
    if {"speedup_lo", "speedup_hi"} <= cols and ({"speedup", "value"} & cols):
        s, lo, hi = d["speedup"] if "speedup" in cols else d["value"], d["speedup_lo"], d["speedup_hi"]
    elif {"ratio", "ci_lo", "ci_hi"} <= cols:
        s, lo, hi = 1.0 / d["ratio"], 1.0 / d["ci_hi"], 1.0 / d["ci_lo"]
    elif "speedup" in cols or "value" in cols:
        s = d["speedup"] if "speedup" in cols else d["value"]
        lo = hi = pd.Series(np.nan, index=d.index)
    else:
        raise ValueError("speedup_frame: need speedup[_lo,_hi], ratio/ci_lo/ci_hi or value columns, "
                         f"got {sorted(cols)}")
    s, lo, hi = (pd.to_numeric(c, errors="coerce").astype(float) for c in (s, lo, hi))
    if what == "ratio":
        s, lo, hi = 1.0 / s, 1.0 / hi, 1.0 / lo
    elif what != "speedup":
        raise ValueError(f"speedup_frame: what must be 'speedup' or 'ratio', got {what!r}")
    verdict = d["verdict"].fillna("n/a").astype(str) if "verdict" in cols else pd.Series("n/a", index=d.index)
    # a significance verdict needs an interval: without one, say so (other verdicts, e.g. "pruned", stay)
    verdict = verdict.where(np.isfinite(lo) & np.isfinite(hi) | ~verdict.isin(["faster", "slower", "same"]), "n/a")
    return d.assign(**{what: s, "lo": lo, "hi": hi, "verdict": verdict})


def _darker(color: str, f: float = 0.55) -> tuple[float, float, float]:
    """``color`` scaled towards black (hatch lines take the edge colour: they must differ from the fill)."""
    r, g, b = mpl.colors.to_rgb(color)
    return (r * f, g * f, b * f)


def _categories(series, order: Sequence[Any] | None) -> list[Any]:
    if order is not None:
        return [c for c in order if c in set(series)]
    return list(dict.fromkeys(series))


def _bars(ax, d, *, x: str, hue: str | None, value: str, lo: str | None, hi: str | None, orient: str,
          bottom: float, labels: Mapping | None, hue_labels: Mapping | None, colors: Mapping | Sequence | None,
          hatches: Mapping | None, order, hue_order, verdicts: bool, width: float, wrap: int) -> dict:
    cats = _categories(d[x], order)
    hues = _categories(d[hue], hue_order) if hue else [None]
    n = len(hues)
    w = width / n
    if isinstance(colors, Mapping):
        cmap = dict(colors)
    else:
        seq = list(colors) if colors is not None else list(PALETTE)
        keys = hues if hue else cats
        cmap = {k: seq[i % len(seq)] for i, k in enumerate(keys)}
    legend: dict[str, Any] = {}
    from matplotlib.patches import Patch

    for j, h in enumerate(hues):
        for i, c in enumerate(cats):
            row = d[(d[x] == c) & ((d[hue] == h) if hue else True)]
            if row.empty:
                continue
            if len(row) > 1:
                raise ValueError(f"bars: {len(row)} rows for {x}={c!r}" + (f", {hue}={h!r}" if hue else "")
                                 + "; aggregate the repeats first (one row per bar)")
            r = row.iloc[0]
            v = float(r[value])
            if not np.isfinite(v):
                continue
            pos = i - width / 2 + w * (j + 0.5)
            color = cmap.get(h if hue else c, PALETTE[0])
            style = VERDICT_STYLE.get(str(r.get("verdict", "n/a")), VERDICT_STYLE["n/a"]) if verdicts else {}
            hatch = (hatches or {}).get(h if hue else c) or style.get("hatch")
            kw = dict(color=mpl.colors.to_rgba(color, style.get("alpha", 0.9)),
                      edgecolor=_darker(color) if hatch else color, linewidth=0.8, hatch=hatch,
                      linestyle=style.get("linestyle", "-"))
            if orient == "v":
                ax.bar(pos, v - bottom, w * 0.92, bottom=bottom, **kw)
            else:
                ax.barh(pos, v - bottom, w * 0.92, left=bottom, **kw)
            if lo and hi and np.isfinite(r[lo]) and np.isfinite(r[hi]) and float(r[hi]) > float(r[lo]):
                err = [[max(v - float(r[lo]), 0.0)], [max(float(r[hi]) - v, 0.0)]]
                ebkw = dict(fmt="none", ecolor="#222222", elinewidth=0.8, capsize=2, zorder=3)
                if orient == "v":
                    ax.errorbar(pos, v, yerr=err, **ebkw)
                else:
                    ax.errorbar(v, pos, xerr=err, **ebkw)
            if hue:
                hh = (hatches or {}).get(h) or None
                legend.setdefault(readable(h, hue_labels, width=28),
                                  Patch(facecolor=color, edgecolor=_darker(color) if hh else color, hatch=hh))
    ticks = [readable(c, labels, width=wrap) for c in cats]
    if orient == "v":
        ax.set_xticks(range(len(cats)), ticks)
        ax.set_xlim(-0.5, len(cats) - 0.5)
        ax.grid(False, axis="x")
    else:
        ax.set_yticks(range(len(cats)), ticks)
        ax.set_ylim(len(cats) - 0.5, -0.5)
        ax.grid(False, axis="y")
    return legend


def legend_entries(colors: Mapping[Any, str], *, hatches: Mapping[Any, str] | None = None,
                   verdicts: Iterable[str] = (), labels: Mapping | None = None) -> tuple[list, list[str]]:
    """``(handles, labels)`` for one legend shared by several panels: a patch per series colour
    (with its hatch) and, for speed-up bars, what a solid and a hatched bar mean."""
    from matplotlib.patches import Patch

    items = {}
    for k, c in colors.items():
        hh = (hatches or {}).get(k) or None
        items[readable(k, labels, width=28)] = Patch(facecolor=c, edgecolor=_darker(c) if hh else c, hatch=hh)
    items.update(_verdict_handles(verdicts))
    return list(items.values()), list(items)


def _verdict_handles(verdicts: Iterable[str]) -> dict[str, Any]:
    from matplotlib.patches import Patch

    present = set(verdicts)
    out = {}
    if present & {"faster", "slower"}:
        out["interval clear of the noise floor"] = Patch(facecolor="#777777", edgecolor="#777777")
    if "same" in present:
        out["same: within noise"] = Patch(facecolor=mpl.colors.to_rgba("#777777", 0.3), edgecolor="#777777",
                                         linestyle="--")
    if "n/a" in present:
        out["no interval recorded"] = Patch(facecolor=mpl.colors.to_rgba("#777777", 0.8), edgecolor="none")
    if "pruned" in present:
        out["pruned: stopped after one round (far slower)"] = Patch(facecolor=mpl.colors.to_rgba("#777777", 0.8),
                                                                    edgecolor="#777777", hatch="..")
    return out


def speedup_bars(ax, df, *, x: str, hue: str | None = None, what: str = "speedup", orient: str = "v",
                 labels: Mapping | None = None, hue_labels: Mapping | None = None,
                 colors: Mapping | Sequence | None = None, hatches: Mapping | None = None,
                 order: Sequence | None = None, hue_order: Sequence | None = None, log: bool | None = None,
                 legend: bool | str = "right", legend_title: str | None = None, label: str | None = None,
                 annotate: bool = False, wrap: int = 14) -> bool:
    """Speed-up (or time ratio) bars **starting at 1×** with their interval and verdict.

    ``df`` holds one row per bar (see :func:`speedup_frame` for the accepted columns: the
    measurement core's ``ratio, ci_lo, ci_hi, verdict`` records work as they are). Bars grow from
    the 1× line up (faster) or down (slower); the error bar is the interval; ``same`` verdicts
    (within the A/A noise floor) are drawn pale with a dashed outline (``hatches`` may mark series). The axis is logarithmic when the
    values span ≥ 10× (or ``log=True``). ``orient="h"`` puts long category names on the y axis.
    Returns whether the value axis is logarithmic.
    """
    d = speedup_frame(df, what=what)
    leg = _bars(ax, d, x=x, hue=hue, value=what, lo="lo", hi="hi", orient=orient, bottom=1.0, labels=labels,
                hue_labels=hue_labels, colors=colors, hatches=hatches, order=order, hue_order=hue_order, verdicts=True,
                width=0.8, wrap=wrap)
    vals = np.concatenate([d[what].to_numpy(float), d["lo"].to_numpy(float), d["hi"].to_numpy(float)])
    is_log = ratio_axis(ax, vals, axis="y" if orient == "v" else "x", log=log)
    (ax.axhline if orient == "v" else ax.axvline)(1.0, color="black", lw=0.8, zorder=2)
    text = label or ("speed-up (×, > 1 is faster)" if what == "speedup" else "time / baseline (< 1 is faster)")
    (ax.set_ylabel if orient == "v" else ax.set_xlabel)(text)
    if annotate:
        _annotate(ax, d, x=x, hue=hue, value=what, order=order, hue_order=hue_order, orient=orient)
    if legend:
        handles = {**leg, **_verdict_handles(d["verdict"])}
        if handles:
            legend_outside(ax, where=legend if isinstance(legend, str) else "right", title=legend_title,
                           handles=list(handles.values()), labels=list(handles))
    return is_log


def _annotate(ax, d, *, x, hue, value, order, hue_order, orient) -> None:
    cats = _categories(d[x], order)
    hues = _categories(d[hue], hue_order) if hue else [None]
    w = 0.8 / len(hues)
    for j, h in enumerate(hues):
        for i, c in enumerate(cats):
            row = d[(d[x] == c) & ((d[hue] == h) if hue else True)]
            if row.empty or not np.isfinite(row[value].iloc[0]):
                continue
            v = float(row[value].iloc[0])
            top = float(row["hi"].iloc[0]) if np.isfinite(row["hi"].iloc[0]) else v
            bot = float(row["lo"].iloc[0]) if np.isfinite(row["lo"].iloc[0]) else v
            pos = i - 0.4 + w * (j + 0.5)
            up = v >= 1.0
            where = top if up else bot
            if orient == "v":
                ax.annotate(f"{v:.2f}", (pos, where), xytext=(0, 2 if up else -2), textcoords="offset points",
                            ha="center", va="bottom" if up else "top", fontsize=6.5)
            else:
                ax.annotate(f"{v:.2f}", (where, pos), xytext=(2 if up else -2, 0), textcoords="offset points",
                            ha="left" if up else "right", va="center", fontsize=6.5)


def grouped_bars(ax, df, *, x: str, hue: str | None = None, value: str = "value", lo: str | None = None,
                 hi: str | None = None, orient: str = "v", labels: Mapping | None = None,
                 hue_labels: Mapping | None = None, colors: Mapping | Sequence | None = None,
                 hatches: Mapping | None = None, order: Sequence | None = None, hue_order: Sequence | None = None,
                 log: bool | None = None, legend: bool | str = "right", legend_title: str | None = None,
                 ylabel: str | None = None, wrap: int = 14) -> bool:
    """Grouped bars (one per ``x`` × ``hue`` row) with asymmetric error bars from columns ``lo``/``hi``
    (absolute values, e.g. the 25th/75th percentiles of repeated timings).

    Log axis when the values span ≥ 10× (or ``log=True``); on a log axis bars start at the
    axis' lower limit. Returns whether the value axis is logarithmic.
    """
    import pandas as pd
    from matplotlib.ticker import FuncFormatter

    d = pd.DataFrame(df)
    vals = d[value].to_numpy(float)
    extra = [d[c].to_numpy(float) for c in (lo, hi) if c]
    allv = np.concatenate([vals, *extra]) if extra else vals
    is_log = auto_log(allv) if log is None else bool(log)
    pos = allv[np.isfinite(allv) & (allv > 0)]
    if is_log:
        bottom = float(pos.min()) / 1.6 if pos.size else 1.0
    else:
        bottom = 0.0
    leg = _bars(ax, d, x=x, hue=hue, value=value, lo=lo, hi=hi, orient=orient, bottom=bottom, labels=labels,
                hue_labels=hue_labels, colors=colors, hatches=hatches, order=order, hue_order=hue_order,
                verdicts=False, width=0.8, wrap=wrap)
    if is_log:
        (ax.set_yscale if orient == "v" else ax.set_xscale)("log")
        top = float(pos.max()) * 1.3 if pos.size else 10.0
        (ax.set_ylim if orient == "v" else ax.set_xlim)(bottom, top)
        axis = ax.yaxis if orient == "v" else ax.xaxis
        from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

        axis.set_major_locator(FixedLocator(_nice_log_ticks(bottom, top, _log_tick_gap(ax, "y" if orient == "v" else "x",
                                                                                     bottom, top))))
        axis.set_minor_locator(NullLocator())
        axis.set_minor_formatter(NullFormatter())
        axis.set_major_formatter(FuncFormatter(_plain))
    if ylabel:
        (ax.set_ylabel if orient == "v" else ax.set_xlabel)(ylabel)
    if legend and leg:
        legend_outside(ax, where=legend if isinstance(legend, str) else "right", title=legend_title,
                       handles=list(leg.values()), labels=list(leg))
    return is_log


# -- timelines ----------------------------------------------------------------------------------
def _get(e: Any, name: str) -> Any:
    return e[name] if isinstance(e, Mapping) else getattr(e, name)


def gantt_colors(*timelines: Iterable[Any], key: str = "op", max_keys: int = 8) -> dict[Any, str]:
    """Colours for a Gantt's ``key`` shared by several timelines: the ``max_keys`` keys with the most
    total time get palette colours, every other key the grey ``"other"``."""
    total: dict[Any, float] = {}
    for tl in timelines:
        for e in tl:
            k = _get(e, key)
            total[k] = total.get(k, 0.0) + float(_get(e, "end_ms")) - float(_get(e, "start_ms"))
    ranked = sorted(total, key=lambda k: (-total[k], str(k)))
    n = max_keys if len(ranked) > max_keys else len(ranked)
    cols = {k: PALETTE[i % (len(PALETTE) - 1)] for i, k in enumerate(ranked[:n])}
    for k in ranked[n:]:
        cols[k] = OTHER_COLOR
    return cols


def gantt(ax, events: Sequence[Any], *, key: str = "op", colors: Mapping[Any, str] | None = None,
          max_keys: int = 8, legend: bool | str = "right", legend_title: str | None = None,
          stage_lines: bool = True, title: str | None = None, xlim: tuple[float, float] | None = None,
          row_label: str = "worker") -> dict[Any, str]:
    """Gantt chart: one row per worker, one bar per event, coloured by ``key`` with a colour legend.

    ``events`` have ``worker``, ``start_ms``, ``end_ms`` and ``key`` (attributes or mapping keys,
    e.g. :class:`xflow.parallel.timeline.Event`). Colours come from :func:`gantt_colors` unless
    given (pass the same mapping to every panel that is compared). With ``stage_lines`` and a
    ``stage`` field, dotted lines mark where each stage starts. Returns the colour mapping.
    """
    from matplotlib.patches import Patch

    colors = dict(colors) if colors is not None else gantt_colors(events, key=key, max_keys=max_keys)
    rows: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for e in events:
        s, t = float(_get(e, "start_ms")), float(_get(e, "end_ms"))
        rows.setdefault((int(_get(e, "worker")), colors.get(_get(e, key), OTHER_COLOR)), []).append((s, t - s))
    for (w, col), spans in rows.items():
        ax.broken_barh(spans, (w - 0.36, 0.72), facecolors=col, edgecolors="white", linewidth=0.3)
    workers = sorted({int(_get(e, "worker")) for e in events})
    ax.set_yticks(workers, [f"{row_label} {w}" for w in workers])
    ax.set_ylim(max(workers, default=0) + 0.6, min(workers, default=0) - 0.6)
    ax.grid(False, axis="y")
    ax.set_xlabel("time (ms)")
    if stage_lines and events and all(_has(e, "stage") for e in events[:1]):
        starts: dict[int, float] = {}
        for e in events:
            st = int(_get(e, "stage"))
            starts[st] = min(starts.get(st, math.inf), float(_get(e, "start_ms")))
        for st, t in starts.items():
            if st:
                ax.axvline(t, color="#555555", lw=0.4, ls=":", zorder=0)
    if xlim is not None:
        ax.set_xlim(*xlim)
    else:
        end = max((float(_get(e, "end_ms")) for e in events), default=1.0)
        ax.set_xlim(0, end * 1.01)
    if title:
        ax.set_title(title)
    if legend:
        used = {_get(e, key) for e in events}
        keys = [k for k, c in colors.items() if k in used and c != OTHER_COLOR]
        handles = [Patch(color=colors[k], label=str(k)) for k in keys]
        if any(colors.get(k) == OTHER_COLOR for k in used) or any(k not in colors for k in used):
            handles.append(Patch(color=OTHER_COLOR, label="other"))
        legend_outside(ax, where=legend if isinstance(legend, str) else "right", handles=handles,
                       title=legend_title or key)
    return colors


def _has(e: Any, name: str) -> bool:
    return name in e if isinstance(e, Mapping) else hasattr(e, name)


# -- curves and spread --------------------------------------------------------------------------
def spread_label(n: int, spread: str = "std", center: str = "mean") -> str:
    """``"mean ± std over 3 seeds"``; ``"1 seed (no spread)"`` — never "±" over a single run."""
    n = int(n)
    if n >= 2:
        return f"{center} ± {spread} over {n} seeds" if spread in ("std", "sem") else \
            f"{center}, {spread} over {n} seeds"
    return "1 seed (no spread)" if n == 1 else "no runs"


def mean_spread(df, by: str | Sequence[str], col: str, *, spread: str = "std"):
    """Per group of ``by``: ``center``, ``lo``, ``hi`` and ``n`` of ``col``.

    ``spread="std"``: mean ± standard deviation; ``"iqr"``: median and 25th/75th percentiles.
    Groups with one value get NaN ``lo``/``hi`` (no spread to draw).
    """
    g = df.groupby(by, sort=True)[col]
    if spread == "std":
        c, s, n = g.mean(), g.std(ddof=1), g.count()
        out = c.to_frame("center").assign(lo=c - s, hi=c + s, n=n)
    elif spread == "iqr":
        out = g.median().to_frame("center").assign(lo=g.quantile(0.25), hi=g.quantile(0.75), n=g.count())
    else:
        raise ValueError(f"mean_spread: spread must be 'std' or 'iqr', got {spread!r}")
    out.loc[out.n < 2, ["lo", "hi"]] = np.nan
    return out.reset_index()


def errorbar_curve(ax, x, y, lo=None, hi=None, *, label: str | None = None, color: str | None = None,
                   marker: str = "o", ls: str = "-", **kw: Any):
    """A line with error bars where ``lo``/``hi`` are finite (none drawn for single runs)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    line, = ax.plot(x, y, marker=marker, ls=ls, color=color, label=label, **kw)
    if lo is not None and hi is not None:
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        ok = np.isfinite(lo) & np.isfinite(hi)
        if ok.any():
            ax.errorbar(x[ok], y[ok], yerr=[y[ok] - lo[ok], hi[ok] - y[ok]], fmt="none",
                        ecolor=line.get_color(), elinewidth=0.8, capsize=2)
    return line


def learning_curve(ax, step, center, low=None, high=None, *, n_seeds: int, label: str = "",
                   stat: str = "IQM", ci: float = 0.95, color: str | None = None):
    """A learning curve; the ``ci`` band only with ≥ 2 seeds, and the legend says how many seeds.

    With one seed the curve is drawn alone, labelled ``"1 seed (no interval)"``: an interval over
    a single run would claim a certainty the data do not have.
    """
    n = int(n_seeds)
    prefix = f"{label}: " if label else ""
    if n >= 2 and low is not None and high is not None:
        line, = ax.plot(step, center, color=color, label=f"{prefix}{stat} over {n} seeds")
        ax.fill_between(step, low, high, color=line.get_color(), alpha=0.25, lw=0,
                        label=f"{prefix}{ci:.0%} bootstrap CI")
    else:
        line, = ax.plot(step, center, color=color,
                        label=f"{prefix}1 seed (no interval)" if n == 1 else f"{prefix}{n} seeds")
    return line


def heatmap(ax, values, *, xlabels: Sequence[Any], ylabels: Sequence[Any], annot=None, cmap: str = "viridis",
            vmin: float | None = None, vmax: float | None = None, cbar_label: str | None = None,
            xlabel: str | None = None, ylabel: str | None = None, fontsize: float = 6.5):
    """An annotated heatmap (row 0 at the bottom); text colour follows the cell's brightness."""
    v = np.asarray(values, float)
    im = ax.imshow(v, cmap=cmap, origin="lower", aspect="auto", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(xlabels)), [f"{x:g}" if isinstance(x, float) else str(x) for x in xlabels])
    ax.set_yticks(range(len(ylabels)), [f"{y:g}" if isinstance(y, float) else str(y) for y in ylabels])
    ax.grid(False)
    if annot is not None:
        cm = mpl.colormaps[cmap]
        norm = im.norm
        for i in range(v.shape[0]):
            for j in range(v.shape[1]):
                if not np.isfinite(v[i, j]):
                    continue
                r, g, b, _ = cm(norm(v[i, j]))
                ax.text(j, i, annot[i][j], ha="center", va="center", fontsize=fontsize,
                        color="black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "white")
    cb = ax.figure.colorbar(im, ax=ax)
    if cbar_label:
        cb.set_label(cbar_label)
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    return im


def fit_ticklabels(fig, widths: Sequence[int] = (12, 9, 7)) -> None:
    """Make text fit: wrap titles wider than the figure, re-wrap overlapping x tick labels narrower,
    then turn them 30° if still needed (:func:`save` calls this before checking the layout)."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()

    def overlapping(ax) -> bool:
        return _ticklabels_overlap(_drawn_ticklabels(ax, "x"), r)

    # titles wider than the room they have: wrap them (the layout moves as they wrap: a few passes)
    for _ in range(3):
        titles = [(t, fig.bbox.x1 - fig.bbox.x0) for t in [getattr(fig, "_suptitle", None)] if t is not None]
        titles += [(t, fig.bbox.x1 - max(a.get_window_extent(r).x0, fig.bbox.x0)) for a in fig.axes
                   if a.get_visible() for t in _titles(a)]
        changed = False
        for t, room in titles:
            if not t.get_visible() or not t.get_text().strip():
                continue
            box = t.get_window_extent(r)
            if box.width > room or box.x1 > fig.bbox.x1:
                text = " ".join(t.get_text().split("\n"))
                width = max(10, int(len(text) * min(room, fig.bbox.x1 - box.x0) / box.width * 0.9))
                if wrap(text, width) != t.get_text():
                    t.set_text(wrap(text, width))
                    changed = True
        if not changed:
            break
        fig.canvas.draw()
    for ax in fig.axes:
        if not ax.get_visible() or _is_colorbar(ax) or not overlapping(ax):
            continue
        labels = _drawn_ticklabels(ax, "x")
        texts = [" ".join(t.get_text().split("\n")) for t in labels]
        for w in widths:
            for t, txt in zip(labels, texts):
                t.set_text(wrap(txt, w))
            fig.canvas.draw()
            if not overlapping(ax):
                break
        else:
            for t in labels:
                t.set_rotation(30)
                t.set_horizontalalignment("right")
                t.set_rotation_mode("anchor")
            fig.canvas.draw()


# -- layout check -------------------------------------------------------------------------------
def _overlap(a, b, tol: float = 1.0) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > tol and min(a.y1, b.y1) - max(a.y0, b.y0) > tol


def _titles(ax) -> list:
    """The three title texts of an axes (left, centre, right: the style puts titles on the left)."""
    return [ax._left_title, ax.title, ax._right_title]


def _is_colorbar(ax) -> bool:
    return ax.get_label() == "<colorbar>" or hasattr(ax, "_colorbar")


def layout_problems(fig) -> list[str]:
    """What makes a figure unreadable, as sentences (empty when fine).

    Checks, after drawing: tick labels of one axis overlapping each other; x tick labels taller
    than half their panel; a panel squashed to
    under 35 % of its grid cell (e.g. by a very long tick label); a legend placed inside an axes
    on top of its bars, lines or points; a text (title, label) overlapping another panel; a panel
    whose axis limits leave out every point of its lines.
    """
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    problems: list[str] = []
    axes = [a for a in fig.axes if a.get_visible() and not _is_colorbar(a)]
    W, H = fig.bbox.width, fig.bbox.height
    for k, ax in enumerate(axes):
        title = " ".join(t.get_text() for t in _titles(ax)).strip()
        name = f"panel {k}" + (f" ({title[:40]!r})" if title else "")
        for which in ("x", "y"):
            if _ticklabels_overlap(_drawn_ticklabels(ax, which), r):
                problems.append(f"{name}: {which} tick labels overlap (wrap or shorten them, or turn the bars)")
        bb_ax = ax.get_window_extent(r)
        xl = [t.get_window_extent(r) for t in _drawn_ticklabels(ax, "x") if t.get_text().strip()]
        if xl and max(b.height for b in xl) > 0.5 * bb_ax.height:
            problems.append(f"{name}: x tick labels are taller than half the panel (wrap or shorten them)")
        spec = ax.get_subplotspec()
        if spec is not None:
            nrows, ncols = spec.get_gridspec().get_geometry()
            rs, cs = spec.rowspan, spec.colspan
            cell_w, cell_h = W * len(cs) / ncols, H * len(rs) / nrows
            bb = ax.get_window_extent(r)
            if bb.width < 0.35 * cell_w or bb.height < 0.35 * cell_h:
                problems.append(f"{name}: squashed to {bb.width / cell_w:.0%} × {bb.height / cell_h:.0%} of its "
                                "cell (a label or legend takes the room)")
        shown, total = _points_in_view(ax)
        if total and not shown:
            problems.append(f"{name}: none of its {total} plotted points lies inside the axis limits (limits set "
                            "from the wrong values, e.g. a negative lower bound on a log axis)")
        leg = ax.get_legend()
        if leg is not None and leg.get_visible():
            lb = leg.get_window_extent(r)
            ab = ax.get_window_extent(r)
            inside = _overlap(lb, ab, tol=4.0)
            if inside and _legend_hits_data(ax, lb, r):
                problems.append(f"{name}: the legend covers data (put it outside: xflow.viz.legend_outside)")
    # text beyond the figure's edge is cut off when saved without a tight bounding box
    fb = fig.bbox
    from matplotlib.axis import Tick

    tick_texts = {id(t) for a in fig.axes for tk in a.xaxis.get_major_ticks() + a.yaxis.get_major_ticks()
                  for t in (tk.label1, tk.label2)} | {id(t) for a in fig.axes for tk in
                                                      a.xaxis.get_minor_ticks() + a.yaxis.get_minor_ticks()
                                                      for t in (tk.label1, tk.label2)}
    drawn = [t for a in fig.axes for t in _drawn_ticklabels(a, "x") + _drawn_ticklabels(a, "y")]
    others = [t for t in fig.findobj(mpl.text.Text) if id(t) not in tick_texts and not isinstance(t, Tick)]
    for t in drawn + others:
        if not t.get_visible() or not t.get_text().strip():
            continue
        tb = t.get_window_extent(r)
        if tb.x0 < fb.x0 - 2 or tb.y0 < fb.y0 - 2 or tb.x1 > fb.x1 + 2 or tb.y1 > fb.y1 + 2:
            problems.append(f"text {t.get_text()[:30]!r} runs past the figure's edge (clipped unless saved "
                            "with a tight bounding box)")
    # a panel title or the figure title under a legend
    legs = [lg.get_window_extent(r) for lg in fig.legends if lg.get_visible()]
    legs += [a.get_legend().get_window_extent(r) for a in axes if a.get_legend() is not None]
    for k, ax in enumerate(axes):
        for t in _titles(ax):
            if t.get_visible() and t.get_text().strip() and any(_overlap(t.get_window_extent(r), lb) for lb in legs):
                problems.append(f"panel {k}: its title is covered by a legend")
    sup = getattr(fig, "_suptitle", None)
    if sup is not None and sup.get_visible() and sup.get_text().strip():
        sb = sup.get_window_extent(r)
        if any(_overlap(sb, lb) for lb in legs):
            problems.append("the figure title is covered by a legend (put the legend below: where='below')")
    # titles and axis labels overlapping another panel's area
    for k, ax in enumerate(axes):
        texts = [*_titles(ax), ax.xaxis.label, ax.yaxis.label]
        for t in texts:
            if not t.get_visible() or not t.get_text().strip():
                continue
            tb = t.get_window_extent(r)
            for j, other in enumerate(axes):
                if j != k and _overlap(tb, other.get_window_extent(r), tol=2.0):
                    problems.append(f"panel {k}: its text {t.get_text()[:30]!r} overlaps panel {j}")
                    break
    return problems


def _points_in_view(ax) -> tuple[int, int]:
    """(points inside the view limits, finite points) of an axes' data lines (reference lines excluded)."""
    x0, x1 = sorted(ax.get_xlim())
    y0, y1 = sorted(ax.get_ylim())
    shown = total = 0
    for line in ax.get_lines():
        if not line.get_visible() or _is_reference_line(line) or line.get_transform() != ax.transData:
            continue
        xy = np.asarray(line.get_xydata(), dtype=float)
        if xy.ndim != 2 or not len(xy):
            continue
        xy = xy[np.isfinite(xy).all(axis=1)]
        total += len(xy)
        shown += int(((xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)).sum())
    return shown, total


def _ticklabels_overlap(labels: list, r) -> bool:
    """Whether drawn tick labels collide: box overlap for upright text; for turned text (e.g. 30°)
    whether neighbouring baselines are closer than the text height."""
    labels = [t for t in labels if t.get_visible() and t.get_text().strip()]
    turned = [t for t in labels if 0 < abs(t.get_rotation() % 180) < 90]
    if turned and len(turned) == len(labels):
        th = math.radians(turned[0].get_rotation())
        boxes = sorted((t.get_window_extent(r) for t in labels), key=lambda b: b.x1)
        line = turned[0].get_fontsize() * turned[0].figure.dpi / 72.0 * 1.1
        sin = abs(math.sin(th))
        # neighbours collide when their baselines are closer than a line and the right one's text
        # reaches back over the left one's anchor
        return any((b.x1 - a.x1) * sin < line and b.width - line * sin > (b.x1 - a.x1)
                   for a, b in zip(boxes, boxes[1:]))
    if not labels:
        return False
    boxes = [t.get_window_extent(r) for t in labels]
    gap = 0.4 * labels[0].get_fontsize() * labels[0].figure.dpi / 72.0  # closer reads as one word
    return any(_overlap(boxes[i], boxes[j], tol=-gap) for i in range(len(boxes)) for j in range(i + 1, len(boxes)))


def _drawn_ticklabels(ax, which: str) -> list:
    """Major tick labels of one axis that are drawn (inside the view interval)."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    lo, hi = sorted(axis.get_view_interval())
    eps = 1e-9 * max(abs(lo), abs(hi), 1.0)
    i = 0 if which == "x" else 1
    return [t for t in axis.get_ticklabels() if lo - eps <= t.get_position()[i] <= hi + eps]


def _legend_hits_data(ax, lb, r) -> bool:
    from matplotlib.patches import Rectangle

    for p in ax.patches:
        if isinstance(p, Rectangle) and p.get_visible() and p.get_width() and p.get_height():
            if _overlap(lb, p.get_window_extent(r), tol=1.0):
                return True
    for line in ax.lines:
        if not line.get_visible() or _is_reference_line(line):
            continue
        xy = line.get_xydata()
        if len(xy) and np.isfinite(xy).all(axis=1).any():
            xy = xy[np.isfinite(xy).all(axis=1)]
            if len(xy) == 2 and (xy[0] == xy[1]).all():
                continue
            pts = ax.transData.transform(_densify(xy))
            inside = (pts[:, 0] > lb.x0) & (pts[:, 0] < lb.x1) & (pts[:, 1] > lb.y0) & (pts[:, 1] < lb.y1)
            if inside.any():
                return True
    for c in ax.collections:
        if not c.get_visible():
            continue
        try:
            offs = c.get_offsets()
            if len(offs) > 1 or (len(offs) == 1 and np.any(offs)):
                pts = c.get_offset_transform().transform(offs)
                if ((pts[:, 0] > lb.x0) & (pts[:, 0] < lb.x1) & (pts[:, 1] > lb.y0) & (pts[:, 1] < lb.y1)).any():
                    return True
            for path in c.get_paths():
                if _overlap(lb, path.get_extents(c.get_transform()), tol=1.0):
                    return True
        except (AttributeError, ValueError, NotImplementedError):
            continue
    return False


def _densify(xy: np.ndarray, per_segment: int = 8) -> np.ndarray:
    if len(xy) < 2:
        return xy
    t = np.linspace(0, 1, per_segment, endpoint=False)[:, None, None]
    seg = xy[:-1][None] * (1 - t) + xy[1:][None] * t
    return np.concatenate([seg.reshape(-1, 2), xy[-1:]])


def _is_reference_line(line) -> bool:
    """axhline/axvline (drawn in axes coordinates along one direction): not data."""
    xy = line.get_xydata()
    return len(xy) == 2 and (line.get_transform() != line.axes.transData) and \
        (xy[0][0] == xy[1][0] or xy[0][1] == xy[1][1])
