"""Docs tables of the cost layer (``make report``, ``docs/rl.md``).

* ``costs.fidelity`` — per evaluation model and cost model, Spearman's ρ between predicted and
  measured ORT latency over random rewrites of the model, from ``results/costs/fidelity.csv``
  (``benchmarks/cost_fidelity.py``).
"""
from __future__ import annotations

from xflow.tables import fmt, fmt_ci, load_result, markdown_table, report_table

__all__ = ["TARGET_RHO", "MIN_GRAPHS", "fidelity_table"]

#: The issue's target: rank correlation of the ORT-aware model on every evaluation model.
TARGET_RHO = 0.7
#: Fewer rewritten graphs than this (the rule set reaches only a few on some models): no ρ is shown.
MIN_GRAPHS = 30


def _span(values) -> str:
    lo, hi = int(values.min()), int(values.max())
    return str(lo) if lo == hi else f"{lo}–{hi}"


def _busy(first) -> str:
    """Chunks the measurement core flagged busy, of all chunks; older files recorded only that the
    machine was shared (``machine_shared``)."""
    if "busy" not in first or first["busy"].isna().all():
        return "shared (not recorded)"
    per_chunk = first[first["chunk"] >= 0].drop_duplicates("chunk")
    return f"{int(per_chunk['busy'].astype(bool).sum())} / {len(per_chunk)}"


@report_table("costs.fidelity")
def fidelity_table() -> str:
    """One row per evaluation model: graphs, measured spread, and ρ [95 % bootstrap interval] per
    cost model; whether the ``ort`` model meets :data:`TARGET_RHO`."""
    df = load_result("costs/fidelity.csv")
    models = list(dict.fromkeys(df["model"]))
    cms = list(dict.fromkeys(df["cost_model"]))
    rows = []
    for m in models:  # graph 0 is the original (ratio 1 by definition)
        d = df[df["model"] == m]
        first = d[d["cost_model"] == cms[0]]
        meas = first["measured_ratio"]
        slower = int((first["verdict"] == "slower").sum())
        faster = int((first["verdict"] == "faster").sum())
        row = [f"`{m}`", str(len(first) - 1), f"{fmt(meas.min(), 2)}–{fmt(meas.max(), 2)}", f"{faster} / {slower}",
               _span(first["rounds"][first["graph"] > 0])]
        row.append(_busy(first))
        enough = len(first) - 1 >= MIN_GRAPHS
        for cm in cms:
            r = d[d["cost_model"] == cm].iloc[0]
            row.append(fmt_ci(r["spearman"], r["spearman_lo"], r["spearman_hi"], suffix="") if enough
                       else "— (too few graphs)")
        if "ort" in cms:
            r = d[d["cost_model"] == "ort"].iloc[0]
            row.append(("met" if r["spearman"] >= TARGET_RHO else "not met") if enough
                       else f"not measurable (< {MIN_GRAPHS} graphs)")
        rows.append(row)
    headers = ["model", "graphs", "measured ratio range", "faster / slower", "rounds", "busy chunks",
               *[f"ρ {cm}" for cm in cms]] + ([f"ort ρ ≥ {TARGET_RHO}"] if "ort" in cms else [])
    return markdown_table(headers, rows, ["l", "r", "r", "r", "r", "r", *["r"] * len(cms)] + (["l"] if "ort" in cms else []))


@report_table("costs.session_spread")
def session_spread_table() -> str:
    """Several ORT sessions of the original and of one rewritten graph in one interleaved run
    (``benchmarks/session_spread.py``): each session's median thread-CPU time and its ratio to
    the first original session with the 95 % interval and verdict."""
    df = load_result("costs/session_spread.csv")
    rows = [[f"`{r.model}`", r.variant, f"{r.thread_cpu_ms:.2f} ms",
             "—" if r.verdict == "baseline" else fmt_ci(r.ratio, r.ci_lo, r.ci_hi, suffix="×") + f" {r.verdict}",
             int(r.rounds), "yes" if bool(r.busy) else "no"] for r in df.itertuples()]
    return markdown_table(["model", "session", "time (thread CPU, median)", "vs original #0", "rounds", "busy"],
                          rows, ["l", "l", "r", "r", "r", "l"])
