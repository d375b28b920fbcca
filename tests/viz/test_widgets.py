"""xflow.viz widgets, driven through their ipywidgets state (what a slider move does in a notebook)."""
from __future__ import annotations

import shutil

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from xflow.graphs.builders import make_inception_like
from xflow.rewrites import candidates
from xflow.viz import GanttExplorer, SparsityExplorer, TrajectoryViewer, node_diff

PNG = b"\x89PNG"


@pytest.fixture(scope="module")
def trajectory():
    """A real 3-graph rewrite trajectory: merge the 1x1 siblings, then the next verified rewrite."""
    m0 = make_inception_like()
    c1 = next(c for c in candidates(m0) if c.rule == "merge_sibling_convs")
    c2 = candidates(c1.model)[0]
    return [m0, c1.model, c2.model], [1.0, 0.9, 0.85], [c1.rule, c2.rule]


def test_node_diff_names_the_operators_a_rewrite_removed_and_added(trajectory):
    models, _, _ = trajectory
    removed, added = node_diff(models[0], models[1])
    assert {op for _, op in removed} >= {"Conv"} and len([1 for _, op in removed if op == "Conv"]) == 3
    assert any(op == "Split" for _, op in added)
    assert node_diff(models[1], models[1]) == ([], [])


def test_trajectory_viewer_follows_the_slider(trajectory):
    models, costs, rules = trajectory
    v = TrajectoryViewer(models, costs, rules, measured=[1.0, 1.1, 0.95])
    assert v.slider.max == 2 and v.slider.value == 2 and v.step == 2      # opens on the last step
    assert rules[1] in v.diff.value and bytes(v.curve.value).startswith(PNG)
    v.slider.value = 1                                                    # what dragging the slider does
    assert "merge_sibling_convs" in v.diff.value and "−10.00" in v.diff.value.replace("-", "−")
    assert "b1_1x1" in v.diff.value                                       # a removed conv is named
    d = v.diff_at(1)
    assert d["rule"] == "merge_sibling_convs" and d["cost_before"] == 1.0 and d["cost_after"] == 0.9
    curve_1 = v.curve.value
    v.slider.value = 0
    assert "the original graph" in v.diff.value and v.curve.value != curve_1   # the step marker moved
    assert "measured 1.000×" in v.diff.value
    if shutil.which("dot"):
        v.slider.value = 1
        assert v.graph.value.startswith("<svg") and "#" in v.graph.value
    else:
        assert "no graph rendering" in v.graph.value
    # the play button drives the same slider
    assert v.play.max == v.slider.max


def test_trajectory_viewer_rejects_mismatched_inputs(trajectory):
    models, costs, rules = trajectory
    with pytest.raises(ValueError, match="one cost per graph"):
        TrajectoryViewer(models, costs[:2], rules)
    with pytest.raises(ValueError, match="no models"):
        TrajectoryViewer([], [], [])


def _runs(seeds=(0, 1)):
    rows = []
    for s in seeds:
        for da in (0.0, 0.5, 1.0):
            for dw in (0.0, 1.0):
                if (da, dw) == (1.0, 1.0):
                    continue  # a grid point without a cached run
                rows.append({"dataset": "cora", "model": "gcn", "seed": s, "delta_a": da, "delta_w": dw,
                             "test_acc": 0.8 - 0.1 * da - 0.05 * dw + 0.01 * s, "edge_sparsity": 0.4 * da,
                             "weight_sparsity": 0.5 * dw, "macs": 1e6 * (1 - 0.4 * da) * (1 - 0.5 * dw)})
    rows.append({"dataset": "citeseer", "model": "gcn", "seed": 0, "delta_a": 0.0, "delta_w": 0.0, "test_acc": 0.7,
                 "edge_sparsity": 0.0, "weight_sparsity": 0.0, "macs": 2e6})
    return pd.DataFrame(rows)


def test_sparsity_explorer_sliders_pick_cached_runs():
    e = SparsityExplorer(_runs())
    assert [o[1] for o in e.delta_a.options] == [0.0, 0.5, 1.0] and [o[1] for o in e.delta_w.options] == [0.0, 1.0]
    e.group.value = ("cora", "gcn")
    e.delta_a.value, e.delta_w.value = 0.5, 1.0
    s = e.value
    assert s["n"] == 2 and s["acc"] == pytest.approx(0.8 - 0.05 - 0.05 + 0.005)
    assert s["acc_std"] == pytest.approx(np.std([0.70, 0.71], ddof=1))
    assert s["macs"] == pytest.approx(1e6 * 0.8 * 0.5) and s["dense_macs"] == pytest.approx(1e6)
    assert "± 0.7 (std over 2 seeds)" in e.summary.value and "0.400× (60.0% fewer)" in e.summary.value
    assert bytes(e.plot.value).startswith(PNG)
    e.delta_a.value = 1.0                                              # (1.0, 1.0) was never run
    assert e.value["n"] == 0 and "no cached run" in e.summary.value
    e.group.value = ("citeseer", "gcn")
    e.delta_a.value, e.delta_w.value = 0.0, 0.0
    assert e.value["acc"] == pytest.approx(0.7) and "(1 seed)" in e.summary.value and "±" not in e.summary.value


def test_sparsity_explorer_names_missing_columns():
    with pytest.raises(ValueError, match="macs"):
        SparsityExplorer(_runs().drop(columns=["macs"]))


class _Ev:
    def __init__(self, worker, op, start, end, stage):
        self.worker, self.op, self.start_ms, self.end_ms, self.stage = worker, op, start, end, stage


def _timelines():
    pred = [_Ev(0, "Conv", 0, 4, 0), _Ev(0, "Relu", 4, 5, 1), _Ev(1, "Conv", 4, 6, 1), _Ev(0, "Concat", 6, 7, 2)]
    meas = [_Ev(0, "Conv", 0, 8, 0), _Ev(0, "Relu", 8, 9, 1), _Ev(1, "Conv", 8, 12, 1), _Ev(0, "Concat", 12, 14, 2)]
    return {"predicted": pred, "measured": meas}


def test_gantt_explorer_window_stage_and_utilisation():
    g = GanttExplorer(_timelines())
    assert g.timeline.value == "predicted" and g.window.value == (0.0, 7.0)
    u = g.value
    assert u["makespan_ms"] == 7.0 and u["busy_ms"] == {0: 6.0, 1: 2.0}
    assert u["utilisation"][0] == pytest.approx(6 / 7) and "86 %" in g.info.value
    g.stage.value = 1                                                  # zoom to stage 1: [4, 6] ms (+ padding)
    lo, hi = g.window.value
    assert 3.9 <= lo <= 4.0 and 6.0 <= hi <= 6.1
    assert g.value["busy_ms"][1] == pytest.approx(2.0) and g.value["busy_ms"][0] == pytest.approx(1.0 + (4 - lo) + (hi - 6))
    g.timeline.value = "measured"                                      # another schedule: window resets
    assert g.window.value == (0.0, 14.0) and g.stage.value is None and g.value["makespan_ms"] == 14.0
    png = g.plot.value
    g.color_by.value = "stage"
    assert g.plot.value != png and g.value["top"][0][0] == 0           # stage 0 has the most time
    g.window.value = (8.0, 12.0)
    assert g.value["busy_ms"] == {0: 1.0, 1: 4.0}


def test_gantt_explorer_needs_events():
    with pytest.raises(ValueError, match="no events"):
        GanttExplorer({"predicted": []})
