"""The paper's figures and tables as sweep grids, the paper's numbers beside them, and the tables/plots
built from the committed result files (``results/sparsify/*.csv``).

Grids (all ``profile="reference"``, ``split="random"``, one thread per run; run them with
``benchmarks/sparsify_reproduce.py``, which goes through :func:`xflow.sweep.run_sweep`, so a killed
run resumes where it stopped):

* :func:`fig10_configs` — Fig. 10(a) of the tech report: GCN, δ_a × δ_w ∈ {0, .05, .1, .2, .5, 1, 2}²,
  Cora and CiteSeer (the report shows Cora only), with and without the evaluation node lock;
* :func:`fig4_configs` — Fig. 4: accuracy vs edge sparsity (δ_w = 0) and vs weight sparsity
  (δ_a = 0) for GCN and GAT(v2) on Cora and CiteSeer, with and without the lock;
* :func:`table3_configs` — Table III: decoupled SGC / APPNP with push propagation at 50 % of the
  pushes removed (δ_a found by :func:`xflow.sparsify.decoupled.delta_for_push_sparsity`), dense and
  δ_a = 0 rows beside it;
* :func:`ablation_configs` — every remaining difference to the reference, one row each.

With ``δ_a = 0`` the lock changes nothing (no edge is pruned), so those runs are made once and used
for both settings (:func:`with_lock_copies`).

Paper values: :data:`PAPER_FIG10_CORA_GCN` (rows δ_w, columns δ_a, as printed in the tech report;
the orientation is read from the axis order of its text layer — (0, 0) is the 88.6 dense cell),
:data:`PAPER_TABLE3`.
"""
from __future__ import annotations

from typing import Any

__all__ = ["DELTAS", "SEEDS", "PAPER_FIG10_CORA_GCN", "PAPER_FIG10_CORA_GAT", "PAPER_TABLE3", "PAPER_FIG4_TEXT",
           "fig10_configs", "fig4_configs", "table3_configs", "ablation_configs", "with_lock_copies",
           "summary_table", "fig10_markdown", "fig4_markdown", "table3_markdown", "ablation_markdown",
           "plot_fig10", "plot_fig4"]

DELTAS = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
#: the modest grids run by default on the 2-core development machine (a subset of :data:`DELTAS`;
#: ``full=True`` runs all 7 × 7 cells)
FIG10_DELTAS = {"cora": (0.0, 1.0, 2.0), "citeseer": (0.0, 1.0)}
SEEDS = (0, 1, 2)
BASE: dict[str, Any] = {"profile": "reference", "split": "random", "threads": 1}

#: Fig. 10(a) of the tech report (gdmnl/Unifews ``tech_report.pdf``, commit be8bd51): Cora GCN test
#: accuracy (%), ``[i][j]`` = (δ_w = DELTAS[i], δ_a = DELTAS[j])
PAPER_FIG10_CORA_GCN = (
    (88.6, 89.4, 89.5, 89.1, 89.0, 88.7, 87.5),
    (87.8, 88.1, 88.1, 88.4, 88.5, 88.1, 87.9),
    (88.1, 88.1, 88.1, 88.5, 88.4, 87.9, 87.9),
    (88.5, 89.4, 89.2, 88.9, 88.9, 88.7, 87.5),
    (88.0, 88.6, 89.1, 88.4, 88.2, 89.2, 86.7),
    (87.7, 87.7, 87.8, 88.0, 87.5, 88.4, 86.4),
    (87.6, 87.9, 87.9, 88.1, 88.6, 89.1, 84.7),
)
#: Fig. 10(b): Cora GAT, same layout
PAPER_FIG10_CORA_GAT = (
    (87.2, 86.1, 85.5, 85.6, 85.8, 86.2, 86.5),
    (84.0, 83.7, 83.5, 85.0, 84.6, 84.3, 85.0),
    (83.9, 83.4, 83.4, 83.7, 83.7, 83.9, 84.0),
    (82.4, 82.5, 82.6, 82.9, 82.4, 82.2, 81.2),
    (82.1, 82.6, 82.8, 82.6, 82.6, 82.6, 81.6),
    (82.2, 82.6, 82.8, 82.6, 82.8, 82.6, 81.4),
    (81.2, 81.7, 82.0, 81.7, 81.8, 81.2, 81.5),
)
#: Table III (η_a = 50 % graph sparsification, decoupled models): accuracy (%), propagation time (s),
#: propagation + transformation GMACs
PAPER_TABLE3 = {
    ("cora", "sgc", "dense"): {"acc": 85.8, "time_s": 0.13, "gmacs_prop": 0.36, "gmacs_tran": 2.2},
    ("cora", "sgc", "unifews"): {"acc": 86.0, "time_s": 0.10, "gmacs_prop": 0.18, "gmacs_tran": 1.2},
    ("cora", "appnp", "dense"): {"acc": 86.2, "time_s": 0.15, "gmacs_prop": 0.36, "gmacs_tran": 2.2},
    ("cora", "appnp", "unifews"): {"acc": 86.5, "time_s": 0.08, "gmacs_prop": 0.18, "gmacs_tran": 1.8},
    ("citeseer", "sgc", "dense"): {"acc": 67.7, "time_s": 0.44, "gmacs_prop": 0.68, "gmacs_tran": 2.8},
    ("citeseer", "sgc", "unifews"): {"acc": 73.0, "time_s": 0.26, "gmacs_prop": 0.35, "gmacs_tran": 1.7},
    ("citeseer", "appnp", "dense"): {"acc": 71.6, "time_s": 0.43, "gmacs_prop": 0.68, "gmacs_tran": 2.8},
    ("citeseer", "appnp", "unifews"): {"acc": 73.7, "time_s": 0.21, "gmacs_prop": 0.31, "gmacs_tran": 2.3},
}
#: Fig. 4 is given as curves only; what the text says about them
PAPER_FIG4_TEXT = ("for relatively small ratios η_a < 80 %, models with Unifews pruning achieve comparable or "
                   "exceeding accuracy; accuracy only degrades above extreme sparsity η_a > 95 % (Fig. 9)")

#: extra δ_a points (δ_w = 0) for the GCN edge-sparsity curve, beyond the Fig. 10 row δ_w = 0
FIG4_GCN_EXTRA = {"cora": (0.5, 3.0), "citeseer": ()}
FIG4_GCN_EXTRA_FULL = (0.3, 0.7, 1.5, 3.0)
FIG4_GAT_EDGE = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
FIG4_GAT_WEIGHT = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


def _cfg(**kw) -> dict[str, Any]:
    return {**BASE, **kw}


def fig10_configs(datasets=("cora", "citeseer"), deltas=None, seeds=SEEDS, **extra) -> list[dict]:
    """GCN δ grid with and without the node lock (no lock copies for δ_a = 0); ``deltas=None``: the
    modest per-dataset grids of :data:`FIG10_DELTAS`."""
    out = []
    for d in datasets:
        ds = FIG10_DELTAS.get(d, DELTAS) if deltas is None else deltas
        for da in ds:
            for dw in ds:
                for lock in ((False,) if da == 0 else (False, True)):
                    for s in seeds:
                        out.append(_cfg(dataset=d, model="gcn", delta_a=da, delta_w=dw, lock_eval_nodes=lock, seed=s,
                                        **extra))
    return out


def fig4_configs(datasets=("cora", "citeseer"), seeds=SEEDS, models=("gcn",), full: bool = False,
                 **extra) -> list[dict]:
    """Edge-only (δ_w = 0) and weight-only (δ_a = 0) sweeps; GCN points not already in Fig. 10
    (GAT(v2) costs ~7× a GCN run on the CPU: only with ``models=("gcn", "gat")``)."""
    out = []
    for d in datasets:
        for s in seeds:
            if "gcn" in models:
                for da in (FIG4_GCN_EXTRA_FULL if full else FIG4_GCN_EXTRA.get(d, ())):
                    for lock in (False, True):
                        out.append(_cfg(dataset=d, model="gcn", delta_a=da, delta_w=0.0, lock_eval_nodes=lock, seed=s,
                                        **extra))
            if "gat" in models:
                for da in FIG4_GAT_EDGE:
                    for lock in ((False,) if da == 0 else (False, True)):
                        out.append(_cfg(dataset=d, model="gat", delta_a=da, delta_w=0.0, lock_eval_nodes=lock,
                                        seed=s, **extra))
                for dw in FIG4_GAT_WEIGHT:
                    out.append(_cfg(dataset=d, model="gat", delta_a=0.0, delta_w=dw, lock_eval_nodes=False, seed=s,
                                    **extra))
    return out


def table3_configs(deltas: dict[tuple[str, str], float], seeds=SEEDS, delta_w: float = 0.1, **extra) -> list[dict]:
    """Decoupled rows: dense (``feat_ori``), push at δ_a = 0, push at the 50 % δ_a with δ_w (the
    config files' 0.1) and without weight pruning."""
    out = []
    for (d, m), da in sorted(deltas.items()):
        for s in seeds:
            out.append(_cfg(dataset=d, model=m, method="dense", seed=s, **extra))
            out.append(_cfg(dataset=d, model=m, delta_a=0.0, delta_w=0.0, seed=s, **extra))
            out.append(_cfg(dataset=d, model=m, delta_a=float(da), delta_w=delta_w, seed=s, **extra))
            out.append(_cfg(dataset=d, model=m, delta_a=float(da), delta_w=0.0, seed=s, **extra))
    return out


#: one row per remaining or past difference to the reference (Cora GCN, δ = (1, 1)); ``None`` = as the reference
ABLATIONS: dict[str, dict[str, Any]] = {
    "reference": {},
    "no self-loops (first xflow reading)": {"self_loops": False},
    "full Cora (2,708 nodes, no LCC)": {"largest_component": False},
    "non-stratified random split": {"stratify": False},
    "row-normalised features": {"normalize_features": True},
    "BatchNorm momentum 0.1": {"bn_momentum": 0.1},
    "masks frozen at mid-training (xflow schedule)": {"schedule": "freeze"},
}


def ablation_configs(dataset: str = "cora", delta_a: float = 1.0, delta_w: float = 1.0, seeds=SEEDS,
                     **extra) -> list[dict]:
    """The :data:`ABLATIONS` rows, each with and without the lock, plus their dense runs."""
    out = []
    for name, over in ABLATIONS.items():
        for s in seeds:
            for lock in (False, True):
                out.append(_cfg(dataset=dataset, model="gcn", delta_a=delta_a, delta_w=delta_w, lock_eval_nodes=lock,
                                seed=s, **over, **extra))
            out.append(_cfg(dataset=dataset, model="gcn", method="dense", seed=s, **over, **extra))
    return out


def with_lock_copies(wide):
    """Rows with ``delta_a == 0`` duplicated as ``lock_eval_nodes=True`` (identical by construction)."""
    import pandas as pd

    zero = wide[(wide["delta_a"] == 0) & (~wide["lock_eval_nodes"].astype(bool))].copy()
    zero["lock_eval_nodes"] = True
    have = wide[wide["lock_eval_nodes"].astype(bool) & (wide["delta_a"] == 0)]
    if len(have):
        return wide
    return pd.concat([wide, zero], ignore_index=True)


def summary_table(wide, keys, metrics=("test_acc", "edge_sparsity_offdiag", "weight_sparsity", "mac_reduction")):
    """Mean, std and count over seeds of ``metrics`` per ``keys``."""
    metrics = [m for m in metrics if m in wide.columns]
    g = wide.groupby(list(keys), dropna=False)[metrics]
    out = g.mean().add_suffix("_mean").join(g.std(ddof=0).add_suffix("_std"))
    out["n_seeds"] = g.size()
    return out.reset_index()


def _pm(mean: float, std: float, scale: float = 100.0, digits: int = 1, n: int | None = None) -> str:
    """``mean ± std`` — the mean alone for one seed (a spread over one run is not a spread)."""
    if n is not None and n < 2:
        return f"{scale * mean:.{digits}f}"
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def fig10_markdown(wide, dataset: str = "cora", lock: bool = True, paper=PAPER_FIG10_CORA_GCN) -> str:
    """Markdown grid: rows δ_w, columns δ_a; cells 'ours (mean ± std) / paper' and edge sparsity."""
    sub = wide[(wide["dataset"] == dataset) & (wide["model"] == "gcn")
               & (wide["lock_eval_nodes"].astype(bool) == lock) & (wide["method"] == "unifews")]
    t = summary_table(sub, ["delta_w", "delta_a"])
    cols = sorted(t["delta_a"].unique())
    head = "| δ_w \\ δ_a | " + " | ".join(f"{c:g}" for c in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for i, dw in enumerate(sorted(t["delta_w"].unique())):
        cells = []
        for j, da in enumerate(cols):
            r = t[(t["delta_w"] == dw) & (t["delta_a"] == da)]
            if not len(r):
                cells.append("—")
                continue
            r = r.iloc[0]
            p = ""
            if paper is not None and dw in DELTAS and da in DELTAS:
                p = f" / {paper[DELTAS.index(dw)][DELTAS.index(da)]:.1f}"
            cells.append(f"{_pm(r.test_acc_mean, r.test_acc_std)}{p} <br>e {100 * r.edge_sparsity_offdiag_mean:.0f}% "
                         f"w {100 * r.weight_sparsity_mean:.0f}%")
        lines.append(f"| {dw:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fig4_markdown(wide, model: str, kind: str) -> str:
    """Markdown table of accuracy vs ``kind`` (``edge``: δ_w = 0; ``weight``: δ_a = 0) per dataset and lock."""
    x = "edge_sparsity_offdiag" if kind == "edge" else "weight_sparsity"
    sel = (wide["model"] == model) & (wide["method"] == "unifews")
    sel &= (wide["delta_w"] == 0) if kind == "edge" else (wide["delta_a"] == 0)
    t = summary_table(wide[sel], ["dataset", "lock_eval_nodes", "delta_a" if kind == "edge" else "delta_w"],
                      metrics=("test_acc", x))
    d = "delta_a" if kind == "edge" else "delta_w"
    lines = [f"| dataset | lock | δ | {kind} sparsity | test acc (%) | seeds |", "|---|---|---|---|---|---|"]
    for r in t.sort_values(["dataset", "lock_eval_nodes", d]).itertuples():
        lines.append(f"| {r.dataset} | {'yes' if r.lock_eval_nodes else 'no'} | {getattr(r, d):g} | "
                     f"{100 * getattr(r, x + '_mean'):.1f}% | {_pm(r.test_acc_mean, r.test_acc_std, n=int(r.n_seeds))} | {r.n_seeds} |")
    return "\n".join(lines)


def reference_test_macs(macs_transformation: float, weights_kept: float) -> float:
    """The transformation MACs as the reference's ``run_mb.py`` reports them for the test pass:
    ptflops on one ``(nfeat,)`` input (``Linear_cnt_flops``: ``f_in·f_out`` per node, times the kept
    ratio) multiplied by ``len(idx['test'])`` — the test nodes of the 50/25/25 split, ``n − ⌊n/2⌋ −
    ⌊n/4⌋`` — where xflow counts one inference over all ``n`` nodes (``n·‖M‖₀``). ``n`` is read back
    as ``macs_transformation / weights_kept``. (The reference's per-node bias term, ``f_out`` per
    layer, is not counted by either; it is < 0.1 % here.)"""
    if not weights_kept:
        return float("nan")
    n = round(macs_transformation / weights_kept)
    n_test = n - int(0.5 * n) - int(0.25 * n)
    return macs_transformation * n_test / n


def table3_markdown(wide, timing=None) -> str:
    """Table III beside the paper: accuracy, push sparsity, GMACs (propagation + transformation)."""
    t = summary_table(wide, ["dataset", "model", "method", "delta_a", "delta_w"],
                      metrics=("test_acc", "push_sparsity", "weight_sparsity", "macs_propagation",
                               "macs_transformation", "weights_kept"))
    lines = ["| dataset | model | setting | test acc (%) | paper acc | pushes removed | weight sp | GMACs prop + tran "
             "| tran on test nodes (reference count) | paper GMACs | seeds |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in t.sort_values(["dataset", "model", "method", "delta_a", "delta_w"]).itertuples():
        if r.method == "dense":
            setting, key = "dense (feat_ori)", "dense"
        elif r.delta_a == 0:
            setting, key = "push δ_a=0 (thresholded operator)", None
        else:
            setting, key = f"Unifews δ_a={r.delta_a:.3g}, δ_w={r.delta_w:g}", "unifews" if r.delta_w > 0 else None
        p = PAPER_TABLE3.get((r.dataset, r.model, key)) if key else None
        lines.append(
            f"| {r.dataset} | {r.model} | {setting} | {_pm(r.test_acc_mean, r.test_acc_std, n=int(r.n_seeds))} | "
            f"{p['acc'] if p else '—'} | {100 * r.push_sparsity_mean:.1f}% | {100 * r.weight_sparsity_mean:.1f}% | "
            f"{r.macs_propagation_mean / 1e9:.2f} + {r.macs_transformation_mean / 1e9:.2f} | "
            f"{reference_test_macs(r.macs_transformation_mean, r.weights_kept_mean) / 1e9:.2f} | "
            f"{(str(p['gmacs_prop']) + ' + ' + str(p['gmacs_tran'])) if p else '—'} | {r.n_seeds} |")
    return "\n".join(lines)


def ablation_markdown(wide) -> str:
    """One row per ablation: accuracy with / without the lock, dense, Δ, sparsities."""
    import pandas as pd

    rows = []
    for name, over in ABLATIONS.items():
        sel = pd.Series(True, index=wide.index)
        from xflow.sparsify.config import resolve  # torch: this module stays light

        r = resolve({**BASE, "dataset": "cora", "model": "gcn", **over})
        for k, v in (("self_loops", r["self_loops"]), ("largest_component", r["largest_component"]),
                     ("stratify", r["stratify"]), ("normalize_features", r["normalize_features"]),
                     ("bn_momentum", float(r["hp"].get("bn_momentum", 0.1))), ("schedule", r["schedule"])):
            sel &= wide[k].astype(str) == str(v)
        sub = wide[sel & (wide["dataset"] == "cora") & (wide["model"] == "gcn")]
        cells = {}
        for label, mask in (("dense", sub["method"] == "dense"),
                            ("unlocked", (sub["method"] == "unifews") & ~sub["lock_eval_nodes"].astype(bool)),
                            ("locked", (sub["method"] == "unifews") & sub["lock_eval_nodes"].astype(bool))):
            s = sub[mask]
            cells[label] = (s["test_acc"].mean(), s["test_acc"].std(ddof=0), len(s),
                            s["edge_sparsity_offdiag"].mean() if len(s) else float("nan"),
                            s["weight_sparsity"].mean() if len(s) else float("nan"))
        rows.append((name, cells))
    lines = ["| setting | dense acc (%) | δ=(1,1) no lock | δ=(1,1) lock | off-diag edges removed | weights removed | seeds |",
             "|---|---|---|---|---|---|---|"]
    for name, c in rows:
        d, u, lk = c["dense"], c["unlocked"], c["locked"]
        lines.append(f"| {name} | {_pm(d[0], d[1])} | {_pm(u[0], u[1])} | {_pm(lk[0], lk[1])} | "
                     f"{100 * u[3]:.0f}% | {100 * u[4]:.0f}% | {u[2]} |")
    return "\n".join(lines)


# -- figures (plain matplotlib; small functions so they can move to the shared plotting module) ---
def plot_fig10(wide, ax, dataset: str = "cora", lock: bool = True, paper=None):
    """Heatmap of mean test accuracy over (δ_w rows, δ_a columns); the paper's value under ours."""
    sub = wide[(wide["dataset"] == dataset) & (wide["model"] == "gcn") & (wide["method"] == "unifews")
               & (wide["lock_eval_nodes"].astype(bool) == lock)]
    hm = sub.pivot_table(index="delta_w", columns="delta_a", values="test_acc", aggfunc="mean")
    im = ax.imshow(100 * hm.values, cmap="viridis", aspect="auto", vmin=60, vmax=92)
    ax.set_xticks(range(len(hm.columns)), [f"{v:g}" for v in hm.columns])
    ax.set_yticks(range(len(hm.index)), [f"{v:g}" for v in hm.index])
    for i, dw in enumerate(hm.index):
        for j, da in enumerate(hm.columns):
            txt = f"{100 * hm.values[i, j]:.1f}"
            if paper is not None and dw in DELTAS and da in DELTAS:
                txt += f"\n({paper[DELTAS.index(dw)][DELTAS.index(da)]:.1f})"
            ax.text(j, i, txt, ha="center", va="center", fontsize=6, color="w")
    ax.set(xlabel="δ_a", ylabel="δ_w", title=f"{dataset} GCN, {'with' if lock else 'without'} node lock")
    return im


def plot_fig4(wide, ax, dataset: str, model: str, kind: str):
    """Accuracy (mean ± std) vs edge or weight sparsity, with and without the lock; dense as a line."""
    x = "edge_sparsity_offdiag" if kind == "edge" else "weight_sparsity"
    d = "delta_a" if kind == "edge" else "delta_w"
    sel = (wide["dataset"] == dataset) & (wide["model"] == model) & (wide["method"] == "unifews")
    sel &= (wide["delta_w"] == 0) if kind == "edge" else (wide["delta_a"] == 0)
    for lock, style in ((False, "o-"), (True, "s--")):
        s = wide[sel & (wide["lock_eval_nodes"].astype(bool) == lock)]
        if not len(s):
            continue
        g = s.groupby(d)[[x, "test_acc"]].agg(["mean", "std"]).sort_values((x, "mean"))
        ax.errorbar(100 * g[(x, "mean")], 100 * g[("test_acc", "mean")], yerr=100 * g[("test_acc", "std")].fillna(0),
                    fmt=style, capsize=2, label="lock" if lock else "no lock")
    dense = wide[sel & (wide[d] == 0)]
    if len(dense):
        ax.axhline(100 * dense["test_acc"].mean(), color="k", ls=":", lw=1, label="dense")
    ax.set(xlabel=f"{kind} sparsity (%)", ylabel="test accuracy (%)", title=f"{model.upper()}+{dataset}")
    ax.grid(alpha=0.3)
