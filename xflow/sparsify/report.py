"""Docs tables of ``docs/sparsify.md`` (``make report``), built from the committed result files
``results/sparsify/*.csv`` written by ``benchmarks/sparsify_reproduce.py`` (accuracy) and
``benchmarks/sparsify_speed.py`` (speed). The paper's values come from :mod:`xflow.sparsify.reproduce`."""
from __future__ import annotations

from xflow.tables import fmt_ci, load_result, markdown_table, report_table

__all__: list[str] = []


def _wide(name: str):
    """A reproduction CSV with the ``δ_a = 0`` runs copied as locked (the lock changes nothing there)."""
    from xflow.sparsify.reproduce import with_lock_copies

    return with_lock_copies(load_result(f"sparsify/{name}.csv"))


def _pm(values, scale: float = 100.0) -> str:
    return f"{scale * values.mean():.1f} ± {scale * values.std(ddof=0):.1f}"


@report_table("sparsify.headline")
def headline() -> str:
    """Cora GCN (reference profile, random split) at δ = (1, 1) with and without the evaluation node
    lock against the dense model (δ = 0) of the same seeds — the issue's "Done when" setting."""
    w = _wide("fig10")
    rows = []
    for d in sorted(w["dataset"].unique()):
        sub = w[(w["dataset"] == d) & (w["model"] == "gcn")]
        dense = sub[(sub["delta_a"] == 0) & (sub["delta_w"] == 0) & ~sub["lock_eval_nodes"].astype(bool)]
        dense = dense.set_index("seed")["test_acc"]
        ckpt = sub[(sub["delta_a"] == 0) & (sub["delta_w"] == 0) & ~sub["lock_eval_nodes"].astype(bool)]
        rows.append([d, "dense (δ = 0)", "—", _pm(dense), _pm(ckpt["test_acc_ckpt"]), "+0.0", "0.0%", "0.0%",
                     "1.0×", len(dense)])
        for lock in (False, True):
            s = sub[(sub["delta_a"] == 1) & (sub["delta_w"] == 1) & (sub["lock_eval_nodes"].astype(bool) == lock)]
            if not len(s):
                continue
            s = s.set_index("seed")
            diff = (s["test_acc"] - dense.reindex(s.index)).dropna()
            rows.append([d, "Unifews δ_a = 1, δ_w = 1", "yes" if lock else "no", _pm(s["test_acc"]),
                         _pm(s["test_acc_ckpt"]),
                         f"{100 * diff.mean():+.1f} ± {100 * diff.std(ddof=0):.1f}",
                         f"{100 * s['edge_sparsity_offdiag'].mean():.1f}%", f"{100 * s['weight_sparsity'].mean():.1f}%",
                         f"{s['mac_reduction'].mean():.1f}×", len(s)])
    return markdown_table(["dataset", "model", "eval node lock", "test acc (%)", "reference checkpoint (%)",
                           "Δ vs dense (points, paired)", "off-diag. edges removed", "weights removed",
                           "MAC reduction", "seeds"], rows, ["l", "l", "l", "r", "r", "r", "r", "r", "r", "r"])


@report_table("sparsify.done_when")
def done_when() -> str:
    """The issue's "Done when" command (with ``--lock-eval-nodes``) and the same without it, as run by
    ``benchmarks/sparsify_done_when.py``; the tech report's Fig. 10 cell δ = (1, 1) beside."""
    from xflow.sparsify.reproduce import DELTAS, PAPER_FIG10_CORA_GCN

    df = load_result("sparsify/done_when.csv")
    paper = {"dense": PAPER_FIG10_CORA_GCN[0][0],
             "unifews": PAPER_FIG10_CORA_GCN[DELTAS.index(1.0)][DELTAS.index(1.0)]}
    rows = []
    for r in df.itertuples():
        sparse = r.method != "dense"
        ok = (sparse and r.acc_delta_points >= -2 and r.edge_sparsity_offdiag >= 0.7 and r.weight_sparsity >= 0.7)
        rows.append(["with" if r.lock_flag else "without", r.method, "yes" if r.lock_eval_nodes else "no",
                     f"{100 * r.test_acc_mean:.1f} ± {100 * r.test_acc_std:.1f}",
                     f"{r.acc_delta_points:+.1f} ± {r.acc_delta_std:.1f}" if sparse else "—",
                     f"{100 * r.edge_sparsity_offdiag:.1f}%", f"{100 * r.weight_sparsity:.1f}%",
                     ("yes" if ok else "no") if sparse else "—", f"{paper[r.method]:.1f}", r.seeds])
    return markdown_table(["run (--lock-eval-nodes)", "model", "eval node lock", "test acc (%)",
                           "Δ vs dense (points, paired)", "off-diag. edges removed", "weights removed",
                           "within 2 points, ≥ 70 % / ≥ 70 %", "paper (Fig. 10)", "seeds"], rows,
                          ["l", "l", "l", "r", "r", "r", "r", "l", "r", "r"])


@report_table("sparsify.scale")
def scale() -> str:
    """Full-batch and mini-batch training on a ≥ 10⁷-entry synthetic graph, peak memory per mode
    (``benchmarks/sparsify_scale.py``)."""
    df = load_result("sparsify/scale.csv")
    rows = []
    for r in df.itertuples():
        removed = r.push_sparsity if r.mode.startswith("minibatch") else r.edge_sparsity_offdiag
        rows.append([r.mode.replace("_", " "), r.model, f"{r.num_nodes:,}", f"{r.num_edges:,}", r.epochs,
                     f"δ_a={r.delta_a:.3g}, δ_w={r.delta_w:g}", f"{100 * removed:.1f}%", f"{100 * r.weight_sparsity:.1f}%",
                     f"{r.mac_reduction:.2f}×", f"{100 * r.test_acc:.1f} (chance {100 / r.classes:.1f})",
                     f"{r.peak_gib:.2f} GiB", "yes" if r.within_budget else "no"])
    return markdown_table(["mode", "model", "nodes", "entries of Â", "epochs", "δ", "edges / pushes removed",
                           "weights removed", "MAC reduction", "test acc (%)", "peak memory", "within 24 GiB"], rows,
                          ["l", "l", "r", "r", "r", "l", "r", "r", "r", "r", "r", "l"])


def _fig10(dataset: str, lock: bool) -> str:
    from xflow.sparsify.reproduce import PAPER_FIG10_CORA_GCN, fig10_markdown

    return fig10_markdown(_wide("fig10"), dataset, lock, PAPER_FIG10_CORA_GCN if dataset == "cora" else None)


@report_table("sparsify.fig10_cora_lock")
def fig10_cora_lock() -> str:
    """Fig. 10(a): Cora GCN δ grid, evaluated as the reference code does (node lock); paper after '/'."""
    return _fig10("cora", True)


@report_table("sparsify.fig10_cora_nolock")
def fig10_cora_nolock() -> str:
    """Fig. 10(a) grid without the lock (every pruned edge pruned at evaluation too)."""
    return _fig10("cora", False)


@report_table("sparsify.fig10_citeseer_lock")
def fig10_citeseer_lock() -> str:
    """The Fig. 10 grid on CiteSeer (not in the paper), with the lock."""
    return _fig10("citeseer", True)


@report_table("sparsify.fig10_citeseer_nolock")
def fig10_citeseer_nolock() -> str:
    """The Fig. 10 grid on CiteSeer without the lock."""
    return _fig10("citeseer", False)


def _fig4_frame():
    import pandas as pd

    frames = [_wide("fig10")]
    try:
        frames.append(_wide("fig4"))
    except FileNotFoundError:
        pass
    w = pd.concat(frames, ignore_index=True)
    keys = ["dataset", "model", "delta_a", "delta_w", "lock_eval_nodes", "seed"]
    return w.drop_duplicates(keys)


@report_table("sparsify.fig4_edges")
def fig4_edges() -> str:
    """Fig. 4 (edges): accuracy vs the share of off-diagonal edges removed (δ_w = 0), lock on / off."""
    from xflow.sparsify.reproduce import fig4_markdown

    return fig4_markdown(_fig4_frame(), "gcn", "edge")


@report_table("sparsify.fig4_weights")
def fig4_weights() -> str:
    """Fig. 4 (weights): accuracy vs the share of weights removed (δ_a = 0, so the lock is moot)."""
    from xflow.sparsify.reproduce import fig4_markdown

    w = _fig4_frame()
    return fig4_markdown(w[~w["lock_eval_nodes"].astype(bool)], "gcn", "weight")


@report_table("sparsify.table3")
def table3() -> str:
    """Table III: decoupled SGC / APPNP with per-feature push propagation, the paper's values beside."""
    from xflow.sparsify.reproduce import table3_markdown

    return table3_markdown(load_result("sparsify/table3.csv"))


@report_table("sparsify.ablations")
def ablations() -> str:
    """Each remaining or past difference to the reference switched on alone (Cora GCN, δ = (1, 1))."""
    from xflow.sparsify.reproduce import ablation_markdown

    return ablation_markdown(load_result("sparsify/ablations.csv"))


def _speed_rows(df, keys, label):
    rows = []
    for r in df.itertuples():
        rows.append([label(r)] + [k(r) for k in keys] + [fmt_ci(r.value, r.speedup_lo, r.speedup_hi, r.verdict),
                                                         f"{r.baseline_ms:.2f} → {r.time_ms:.2f}",
                                                         f"±{100 * r.noise_floor:.1f}%", "yes" if r.busy else "no"])
    return rows


@report_table("sparsify.speed_propagation")
def speed_propagation() -> str:
    """Propagation ``Â H`` (F = 64) at 90 % of the off-diagonal edges removed, one thread."""
    df = load_result("sparsify/speed_propagation.csv")
    rows = _speed_rows(df, [lambda r: f"{r.num_edges:,}", lambda r: "yes" if r.self_loops else "no",
                            lambda r: f"{100 * r.edge_sparsity:.1f}%"],
                       lambda r: f"SBM {r.num_nodes:,} nodes: {r.variant} vs {r.baseline}")
    return markdown_table(["graph: variant vs baseline", "entries of Â", "self-loops", "entries removed",
                           "speed-up [95% CI]", "ms (thread CPU)", "A/A floor", "busy"], rows,
                          ["l", "r", "l", "r", "l", "r", "r", "l"])


@report_table("sparsify.speed_weights")
def speed_weights() -> str:
    """Weight transform ``X W`` dense vs sparse at 90–98 % of the weights removed, one thread."""
    df = load_result("sparsify/speed_weights.csv")
    rows = _speed_rows(df, [lambda r: r.masks, lambda r: f"{100 * r.weight_sparsity:.0f}%",
                            lambda r: f"{100 * r.rows_pruned:.0f}%"],
                       lambda r: f"{r.num_nodes}×{r.f_in} @ {r.f_in}×{r.f_out}: {r.variant}")
    return markdown_table(["X W: variant (vs dense)", "masks", "weights removed", "input rows fully pruned",
                           "speed-up [95% CI]", "ms (thread CPU)", "A/A floor", "busy"], rows,
                          ["l", "l", "r", "r", "l", "r", "r", "l"])


@report_table("sparsify.speed_training")
def speed_training() -> str:
    """One training epoch (reference schedule), Unifews vs dense, one thread."""
    df = load_result("sparsify/speed_training.csv")
    rows = _speed_rows(df, [lambda r: f"{100 * r.edge_sparsity_offdiag:.0f}%", lambda r: f"{100 * r.weight_sparsity:.0f}%",
                            lambda r: f"{r.mac_reduction:.1f}×"],
                       lambda r: f"{r.dataset} GCN h={r.hidden}, {getattr(r, 'phase', 'recompute')}: "
                                 f"{r.variant.replace('unifews_', 'δ=(').replace('_', ', ')})")
    return markdown_table(["training epoch (phase)", "off-diag. edges removed", "weights removed", "MAC reduction",
                           "speed-up vs dense [95% CI]", "ms (thread CPU)", "A/A floor", "busy"], rows,
                          ["l", "r", "r", "r", "l", "r", "r", "l"])


def _target_row(target: str, label: str, r, goal: float) -> list:
    if r is None:
        return [target, label, "—", "not measured"]
    if r.speedup_lo >= goal:
        met = "met (whole 95% CI above the target)"
    elif r.value >= goal:
        met = "point estimate only (CI reaches below)"
    else:
        met = "not met"
    return [target, label, fmt_ci(r.value, r.speedup_lo, r.speedup_hi, r.verdict), met]


@report_table("sparsify.speed_targets")
def speed_targets() -> str:
    """The issue's speed targets, each judged from the committed speed records."""
    rows = []
    w = load_result("sparsify/speed_weights.csv")
    for sp in sorted(w["weight_sparsity"].round(2).unique()):
        s = w[(w["weight_sparsity"].round(2) == sp)]
        for kind, sel in (("kernel, input in panel layout", s["variant"] == "panel_kernel"),
                          ("incl. layout conversion / any layout", s["variant"] != "panel_kernel")):
            c = s[sel]
            best = c.loc[c["value"].idxmax()] if len(c) else None
            label = (f"{100 * sp:.0f}% of weights, best over shapes/masks ({kind}): "
                     f"{best.variant} {best.num_nodes}×{best.f_in}@{best.f_in}×{best.f_out} {best.masks}"
                     if best is not None else kind)
            rows.append(_target_row("weight matmul ≥ 3× at ≥ 90% sparsity", label, best, 3.0))
    p = load_result("sparsify/speed_propagation.csv")
    big = p[p["num_edges"] >= 1_000_000]
    for (variant, baseline, loops), c in big.groupby(["variant", "baseline", "self_loops"]):
        r = c.loc[c["value"].idxmin()]  # the largest graph's worst case
        rows.append(_target_row("propagation ≥ 3× at 90% of edges removed, ≥ 1M edges",
                                f"{variant} vs {baseline}, {r.num_edges:,} entries, self-loops {'kept' if loops else 'none'}",
                                r, 3.0))
    t = load_result("sparsify/speed_training.csv")
    for r in t.itertuples():
        if r.verdict == "slower":
            met = "not met (slower)"
        elif r.speedup_hi < 1.0:
            met = "not shown slower: CI below 1, inside the A/A noise floor"
        elif r.value < 1.0:
            met = "not shown slower (point estimate below 1, CI includes 1)"
        else:
            met = "met (not slower)"
        rows.append(["training epoch never slower than dense",
                     f"{r.dataset} h={r.hidden} {getattr(r, 'phase', 'recompute')} {r.variant}",
                     fmt_ci(r.value, r.speedup_lo, r.speedup_hi, r.verdict), met])
    return markdown_table(["target", "measurement", "speed-up [95% CI] verdict", "judgement"], rows)
