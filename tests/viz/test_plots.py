"""xflow.viz.plots: speed-up bars from 1x with intervals, log axes, legends outside, honest spread, layout checks."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # tests only: notebooks never force a backend

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from xflow import viz
from xflow.viz.plots import FigureLayoutError, VERDICT_STYLE


@pytest.fixture(autouse=True)
def _fresh_matplotlib():
    """Each test starts from matplotlib's defaults (viz.figure applies the paper style itself)."""
    with matplotlib.rc_context():
        plt.rcdefaults()
        yield
    plt.close("all")


def _core_rows():
    """Rows as the measurement core's Measurement.records() writes them (ratio = time / baseline time)."""
    return pd.DataFrame([
        {"model": "a", "variant": "x", "ratio": 0.5, "ci_lo": 0.45, "ci_hi": 0.55, "verdict": "faster"},
        {"model": "a", "variant": "y", "ratio": 1.01, "ci_lo": 0.97, "ci_hi": 1.05, "verdict": "same"},
        {"model": "b", "variant": "x", "ratio": 2.0, "ci_lo": 1.8, "ci_hi": 2.2, "verdict": "slower"},
        {"model": "b", "variant": "y", "ratio": 0.05, "ci_lo": 0.04, "ci_hi": 0.06, "verdict": "faster"},
    ])


def test_speedup_frame_inverts_core_ratios_and_their_interval():
    d = viz.speedup_frame(_core_rows())
    row = d.iloc[0]
    assert row.speedup == pytest.approx(2.0)
    assert (row.lo, row.hi) == (pytest.approx(1 / 0.55), pytest.approx(1 / 0.45))  # bounds swap when inverting
    assert (d.lo <= d.speedup).all() and (d.speedup <= d.hi).all()
    bare = viz.speedup_frame(pd.DataFrame({"x": ["a"], "value": [1.3], "verdict": ["faster"]}))
    assert np.isnan(bare.lo.iloc[0]) and bare.verdict.iloc[0] == "n/a"  # no interval: no verdict claimed
    with pytest.raises(ValueError, match="ratio"):
        viz.speedup_frame(pd.DataFrame({"x": [1]}))


def test_speedup_bars_start_at_one_with_the_interval_as_error_bar():
    fig, ax = viz.figure()
    viz.speedup_bars(ax, _core_rows(), x="model", hue="variant", legend=False)
    bars = [p for p in ax.patches if p.get_height()]
    assert len(bars) == 4
    assert all(p.get_y() == pytest.approx(1.0) for p in bars)          # grow from the 1x line, not from 0
    tops = sorted(p.get_y() + p.get_height() for p in bars)
    assert tops == pytest.approx(sorted([2.0, 1 / 1.01, 0.5, 20.0]))
    # the error bar of the 2x bar spans exactly its bootstrap interval
    segs = [seg for c in ax.collections for seg in c.get_segments()]
    spans = sorted((round(s[:, 1].min(), 4), round(s[:, 1].max(), 4)) for s in segs)
    assert (round(1 / 0.55, 4), round(1 / 0.45, 4)) in spans
    assert ax.get_yscale() == "log"                                     # 0.5x .. 20x spans orders of magnitude
    same = next(p for p in bars if p.get_y() + p.get_height() == pytest.approx(1 / 1.01))
    assert same.get_facecolor()[3] == pytest.approx(VERDICT_STYLE["same"]["alpha"])
    assert same.get_linestyle() == "--"


def test_small_differences_get_a_linear_axis_that_does_not_start_at_zero():
    rows = pd.DataFrame({"method": ["g", "b"], "speedup": [0.96, 0.98], "speedup_lo": [0.95, 0.97],
                         "speedup_hi": [0.97, 0.99], "verdict": ["slower", "slower"]})
    fig, ax = viz.figure()
    viz.speedup_bars(ax, rows, x="method", legend=False)
    lo, hi = ax.get_ylim()
    assert ax.get_yscale() == "linear" and lo > 0.5 and hi < 1.1      # the 3 % difference is visible


def test_speedup_bars_legend_is_outside_and_explains_verdicts():
    fig, ax = viz.figure(width="page")
    viz.speedup_bars(ax, _core_rows(), x="model", hue="variant")
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"x", "y"} <= set(texts) and "same: within noise" in texts
    assert viz.layout_problems(fig) == []
    fig.canvas.draw()
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1


def test_duplicate_rows_per_bar_are_refused():
    rows = pd.concat([_core_rows(), _core_rows()])
    fig, ax = viz.figure()
    with pytest.raises(ValueError, match="aggregate"):
        viz.speedup_bars(ax, rows, x="model", hue="variant")


def test_grouped_bars_error_bars_are_the_given_quartiles_and_log_when_spanning():
    d = pd.DataFrame({"model": ["m1", "m1", "m2", "m2"], "level": ["a", "b", "a", "b"],
                      "value": [1.0, 2.0, 100.0, 50.0], "q25": [0.9, 1.8, 90.0, 45.0], "q75": [1.2, 2.5, 120.0, 55.0]})
    fig, ax = viz.figure()
    viz.grouped_bars(ax, d, x="model", hue="level", value="value", lo="q25", hi="q75", legend=False)
    assert ax.get_yscale() == "log"
    segs = [seg for c in ax.collections for seg in c.get_segments()]
    spans = {(round(s[:, 1].min(), 3), round(s[:, 1].max(), 3)) for s in segs}
    assert (90.0, 120.0) in spans and (0.9, 1.2) in spans


def test_learning_curve_draws_no_interval_over_one_seed():
    step = np.arange(5.0)
    fig, ax = viz.figure()
    viz.learning_curve(ax, step, step, step - 1, step + 1, n_seeds=1, label="PPO")
    assert not ax.collections                                           # no band
    assert ax.lines[0].get_label() == "PPO: 1 seed (no interval)"
    fig, ax = viz.figure()
    viz.learning_curve(ax, step, step, step - 1, step + 1, n_seeds=3, label="PPO")
    labels = [h.get_label() for h in ax.get_legend_handles_labels()[0]]
    assert labels == ["PPO: IQM over 3 seeds", "PPO: 95% bootstrap CI"] and len(ax.collections) == 1


def test_spread_helpers_never_claim_a_spread_over_one_run():
    assert viz.spread_label(1) == "1 seed (no spread)" and "±" not in viz.spread_label(1)
    assert viz.spread_label(3) == "mean ± std over 3 seeds"
    df = pd.DataFrame({"g": [0, 1, 1], "v": [1.0, 2.0, 4.0]})
    s = viz.mean_spread(df, "g", "v").set_index("g")
    assert np.isnan(s.loc[0, "lo"]) and s.loc[0, "n"] == 1
    assert s.loc[1, "center"] == 3.0 and s.loc[1, "lo"] == pytest.approx(3 - np.std([2, 4], ddof=1))


class _Ev:
    def __init__(self, worker, op, start, end, stage):
        self.worker, self.op, self.start_ms, self.end_ms, self.stage = worker, op, start, end, stage


def test_gantt_has_a_colour_legend_and_groups_rare_keys_as_other():
    ops = ["Conv"] * 5 + ["Relu", "Add", "A", "B", "C", "D", "E", "F", "G"]
    ev = [_Ev(i % 2, op, float(i), i + 0.9 + (3 if op == "Conv" else 0), i // 4) for i, op in enumerate(ops)]
    fig, ax = viz.figure()
    colors = viz.gantt(ax, ev, key="op", max_keys=4)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "Conv" and labels[-1] == "other" and len(labels) == 5
    assert sum(c == "#C8C8C8" for c in colors.values()) == len(set(ops)) - 4
    assert [t.get_text() for t in ax.get_yticklabels()] == ["worker 0", "worker 1"]
    # shared colours: a second timeline coloured with the same mapping keeps Conv's colour
    fig2, ax2 = viz.figure()
    assert viz.gantt(ax2, ev[:3], key="op", colors=colors)["Conv"] == colors["Conv"]


def test_layout_problems_catches_the_old_broken_bar_chart():
    """The old 10_measured_latency_bars: pandas bars, a long model name, a legend over the bars."""
    models = ["builder:inception_like", "builder:matmul_chain", "builder:qkv_matmuls",
              "builder:sibling_convs?kernels=(3,1,1)&out_channels=(4,4,4)&size=4&channels=4"]
    mt = pd.DataFrame(np.full((4, 5), 0.95), index=models, columns=["ort", "rl", "greedy", "beam", "random"])
    with matplotlib.rc_context():
        plt.rcdefaults()
        ax = mt.plot.bar(figsize=(7, 3.5), rot=10)
        plt.tight_layout()
        problems = viz.layout_problems(ax.figure)
    assert any("taller than half the panel" in p for p in problems)
    assert any("legend covers data" in p for p in problems)
    fig, ax = viz.figure(width="page", height=2.6)   # the same numbers through xflow.viz: no problem
    rows = pd.DataFrame([{"model": m, "search": s, "speedup": 1 / 0.95, "speedup_lo": 1.0, "speedup_hi": 1.1,
                          "verdict": "same"} for m in models for s in mt.columns])
    viz.speedup_bars(ax, rows, x="model", hue="search", labels={models[-1]: "sibling_convs (lookahead)"})
    viz.fit_ticklabels(fig)
    assert viz.layout_problems(fig) == []


def test_layout_problems_catches_a_squashed_panel_and_a_title_under_a_legend():
    fig, ax = plt.subplots(figsize=(5, 2), layout="constrained")
    ax.plot([0, 1], [0, 1], label="a very long legend entry that eats the figure")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    assert any("squashed" in p for p in viz.layout_problems(fig))
    fig, ax = viz.figure(width="column")
    ax.plot([0, 1], [0, 1], label="line")
    ax.set_title("title")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0))
    assert any("title is covered" in p for p in viz.layout_problems(fig))


def test_layout_problems_catches_limits_that_hide_every_point():
    """The old sparsity timing plot: y limits taken from (median - IQR/2).min() < 0 on a log axis hid every line."""
    fig, ax = viz.figure(width="column")
    ax.errorbar([2e4, 2e5], [0.4, 53.0], yerr=[[0.3, 40.0], [12.0, 40.0]], marker="o")
    ax.axhline(1.0, color="k")
    viz.log_axis(ax, "y", values=[71.6, 76.5])
    assert any("none of its" in p and "inside the axis limits" in p for p in viz.layout_problems(fig))
    viz.log_axis(ax, "y", values=[0.1, 0.4, 53.0, 93.0])
    assert not any("plotted points" in p for p in viz.layout_problems(fig))


def test_fit_ticklabels_wraps_identifiers_then_turns_them():
    fig, ax = viz.figure(width="column")
    names = ["mobilenet_v3_small_variant", "squeezenet1_1_variant", "efficientnet_b0_variant", "resnet18_variant"]
    ax.bar(range(4), [1, 2, 3, 4])
    ax.set_xticks(range(4), names)
    assert any("overlap" in p for p in viz.layout_problems(fig))
    viz.fit_ticklabels(fig)
    assert not any("overlap" in p for p in viz.layout_problems(fig))


def test_readable_and_wrap():
    assert viz.readable("builder:qkv_matmuls") == "qkv_matmuls"
    assert viz.readable("builder:s?k=1&c=2", width=40) == "s (k=1, c=2)"
    assert viz.readable("x", {"x": "pretty name"}) == "pretty name"
    assert viz.wrap("mobilenet_v3_small", 10) == "mobilenet_\nv3_small"
    assert all(len(line) <= 12 for line in viz.wrap("a_b_c_d_e_f_g_h_i_j", 6).splitlines())


def test_shared_ratio_axis_holds_every_panels_bars():
    """sharex panels: the limits come from all panels, so a 0.05x bar of the first panel stays on the axis."""
    fig, (a, b) = viz.figure(1, 2, sharex=True)
    viz.speedup_bars(a, pd.DataFrame({"v": ["p", "q"], "speedup": [0.05, 1.2]}), x="v", orient="h", legend=False)
    viz.speedup_bars(b, pd.DataFrame({"v": ["p", "q"], "speedup": [0.8, 4.0]}), x="v", orient="h", legend=False)
    lo, hi = b.get_xlim()
    assert a.get_xlim() == (lo, hi) and lo < 0.05 and hi > 4.0
    fig2, (c, d) = viz.figure(1, 2)                                     # unshared panels keep their own limits
    viz.speedup_bars(c, pd.DataFrame({"v": ["p"], "speedup": [0.05]}), x="v", orient="h", legend=False)
    viz.speedup_bars(d, pd.DataFrame({"v": ["p"], "speedup": [1.5]}), x="v", orient="h", legend=False)
    assert d.get_xlim()[0] > 0.5


def test_log_ticks_label_both_ends_of_the_axis():
    from xflow.viz.plots import _nice_log_ticks

    ticks = _nice_log_ticks(0.55, 5.2)                                   # 1-2-5 alone leaves 0.55..1 unlabelled
    assert min(ticks) < 1.0 and max(ticks) <= 5.2 and len(ticks) <= 7
    assert _nice_log_ticks(1.0, 10.0) == [1.0, 2.0, 5.0, 10.0]           # a clean 1-2-5 range stays 1-2-5
    wide = _nice_log_ticks(0.04, 45.0)                                   # three decades: few labels, both sides of 1x
    assert 4 <= len(wide) <= 7 and min(wide) < 0.2 and max(wide) > 10 and 1.0 in wide


def test_ratio_axis_ticks_read_as_times():
    fig, ax = viz.figure()
    ax.plot([0, 1], [0.3, 4.0])
    assert viz.ratio_axis(ax, [0.3, 4.0]) is True
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert "1×" in labels and all(lab.endswith("×") for lab in labels)


def test_log_axis_ticks_without_exponents():
    fig, ax = viz.figure()
    ax.scatter([2e4, 2e5], [1, 2])
    viz.log_axis(ax, "x", values=[2e4, 2e5], eng=True)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert "20k" in labels and "100k" in labels and not any("e+" in lab or "10^" in lab for lab in labels)


def test_save_writes_atomically_with_provenance_and_checks_layout(tmp_path, monkeypatch):
    src = tmp_path / "results" / "part-1.parquet"
    frame = pd.DataFrame({"a": [1]})
    frame.attrs["source"] = str(src)
    fig, ax = viz.figure(width="column")
    ax.plot([0, 1], [1, 2])
    out = viz.save(fig, "fig_ok", source=[frame, "other.csv"], directory=tmp_path, show=False)
    meta = Image.open(out).text
    assert out == tmp_path / "fig_ok.png" and str(src) in meta["Source"] and "other.csv" in meta["Source"]
    assert meta["Software"].startswith("xflow")
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["fig_ok.png"]   # no temp file left
    assert not plt.get_fignums()                                                      # closed after saving
    # strict mode: a broken layout is an error (the figure is still written to look at)
    monkeypatch.setenv("XFLOW_STRICT_FIGURES", "1")
    ax = pd.DataFrame(np.ones((3, 4)), index=["x" * 40, "y" * 40, "z" * 40]).plot.bar(rot=0)
    with pytest.raises(FigureLayoutError, match="legend covers data"):
        viz.save(ax.figure, "fig_bad", directory=tmp_path, show=False)
    assert (tmp_path / "fig_bad.png").exists()
    monkeypatch.delenv("XFLOW_STRICT_FIGURES")
    ax = pd.DataFrame(np.ones((3, 4))).plot.bar(rot=0)
    viz.save(ax.figure, "fig_bad2", directory=tmp_path, show=False)                   # default: a warning only


def test_save_shows_inline_in_a_notebook(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    fig, ax = viz.figure(width="column")
    ax.plot([0, 1], [1, 2])
    viz.save(fig, "inline", directory=tmp_path, show=True)
    assert shown == [fig]


def test_legend_entries_show_hatches_and_verdicts():
    handles, labels = viz.legend_entries({"a · 1 thr": "#0072B2", "a · 2 thr": "#0072B2"},
                                         hatches={"a · 2 thr": "///"}, verdicts=["same", "faster"])
    assert labels == ["a · 1 thr", "a · 2 thr", "interval clear of the noise floor", "same: within noise"]
    assert handles[1].get_hatch() == "///" and handles[1].get_edgecolor() != handles[1].get_facecolor()


def test_speedup_frame_reads_value_rows_with_speedup_bounds_and_keeps_pruned():
    """Rows as zoo_latency / the rewrite baselines / algsel write them: value = speed-up, bounds beside it."""
    rows = pd.DataFrame({"sel": ["a", "b", "c"], "value": [1.2, 0.3, 1.0], "speedup_lo": [1.1, None, 1.0],
                         "speedup_hi": [1.3, None, 1.0], "verdict": ["faster", "pruned", "baseline"]})
    d = viz.speedup_frame(rows)
    assert list(d.speedup) == [1.2, 0.3, 1.0] and (d.lo.iloc[0], d.hi.iloc[0]) == (1.1, 1.3)
    assert list(d.verdict) == ["faster", "pruned", "baseline"]
    fig, ax = viz.figure(width="page")
    viz.speedup_bars(ax, rows, x="sel")
    assert "pruned: stopped after one round (far slower)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_log_ticks_keep_labels_apart_on_a_short_axis():
    """Just over a decade on a short panel (autobatch notebook: bars spanning ~13x): the 1-1.5-2-3-5-7
    step put 100, 150, 200 closer than a label's height and the layout check failed the run. Kills:
    ignoring ``min_gap`` (the dense ticks come back) and not passing it from the bars."""
    import itertools
    import math

    import matplotlib.pyplot as plt
    import pandas as pd

    from xflow import viz
    from xflow.viz.plots import _nice_log_ticks, layout_problems

    dense = _nice_log_ticks(20.2, 539.0)
    assert min(math.log10(b / a) for a, b in zip(dense, dense[1:])) < 0.15
    sparse = _nice_log_ticks(20.2, 539.0, min_gap=0.18)
    assert len(sparse) >= 3 and min(math.log10(b / a) for a, b in zip(sparse, sparse[1:])) >= 0.18
    viz.use_style()
    impls = ["eager", "depth", "agenda", "agenda-unfused", "hand"]
    fig, axes = viz.figure(2, 4, width="page", height=4.8, squeeze=False)
    for i, j in itertools.product(range(2), range(4)):
        d = pd.DataFrame({"variant": impls, "throughput": [32.4, 60.0, 120.0, 250.0, 414.0]})
        viz.grouped_bars(axes[i][j], d, x="variant", value="throughput", order=impls, legend=False)
        axes[i][j].set_title("treelstm · infer · batch 16")
        axes[i][j].set_ylabel("examples/s (thread CPU)")
        axes[i][j].tick_params(axis="x", labelrotation=30)
    assert not [p for p in layout_problems(fig) if "y tick labels overlap" in p]
    plt.close(fig)
