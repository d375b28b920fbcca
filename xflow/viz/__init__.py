"""The one plotting module every notebook uses: paper-quality figures and interactive widgets.

* :mod:`xflow.viz.plots` — style, figure sizes, saving with provenance (and showing inline),
  speed-up bars with intervals and verdicts, grouped bars with spread, Gantt charts with a colour
  legend, learning curves (an interval only with ≥ 2 seeds), a layout checker.
* :mod:`xflow.viz.widgets` — ipywidgets: a rewrite-trajectory viewer, a sparsity explorer and an
  interactive Gantt for parallel schedules.

Names are exported lazily, so ``import xflow.viz`` costs nothing until a function is used.
"""
from __future__ import annotations

from xflow._lazy import lazy_getattr

_EXPORTS = {
    **{n: "xflow.viz.plots" for n in (
        "PALETTE", "COLUMN_IN", "PAGE_IN", "use_style", "figure", "save", "to_png", "legend_outside", "legend_entries", "wrap", "fit_ticklabels",
        "readable", "speedup_frame", "speedup_bars", "grouped_bars", "gantt", "gantt_colors",
        "learning_curve", "mean_spread", "spread_label", "errorbar_curve", "heatmap", "layout_problems",
        "auto_log", "ratio_axis", "log_axis")},
    **{n: "xflow.viz.widgets" for n in ("TrajectoryViewer", "SparsityExplorer", "GanttExplorer", "node_diff")},
    "plots": "xflow.viz.plots",
    "widgets": "xflow.viz.widgets",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS, submodules=("plots", "widgets"))
