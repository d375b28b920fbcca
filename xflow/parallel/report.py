"""Docs tables of the parallelizer (``make report``), from ``results/parallel/*.csv`` written by
``benchmarks/parallel_latency.py``: fast serial code vs ONNX Runtime, parallel speed-ups over it,
the plans, and what cloning gains. Every speed-up carries its interval and verdict."""
from __future__ import annotations

from xflow.tables import fmt, fmt_ci, load_result, markdown_table, report_table

__all__: list[str] = []


def _row(g, variant):
    sel = g[g.variant == variant]
    return sel.iloc[0] if len(sel) else None


def _sp(r) -> str:
    return fmt_ci(r.speedup, r.speedup_lo, r.speedup_hi, r.verdict) if r is not None else "—"


@report_table("parallel.serial")
def serial_table() -> str:
    """Generated serial code (1 thread, thread CPU time) against ONNX Runtime and its own variants."""
    df = load_result("parallel/serial.csv")
    df = df[~df.is_aa_control.astype(bool)]
    rows = []
    for (model, quick), g in df.groupby(["model", "quick"], sort=False):
        base, ort = _row(g, "gen_serial"), _row(g, "ort_1t")
        rows.append([f"`{model}`" + (" (quick)" if bool(quick) else ""), fmt(base.value) if base is not None else "—",
                     fmt(ort.value) if ort is not None else "—",
                     _sp(ort),  # time_gen / time_ort: how many times faster ORT is
                     _sp(_row(g, "gen_serial_tuned")), _sp(_row(g, "gen_serial_graph")),
                     _sp(_row(g, "gen_serial_plain")),
                     _sp(_row(g, "gen_serial_torchscript")), _sp(_row(g, "eager_1t")),
                     f"±{100 * float(g.noise_floor.iloc[0]):.1f}%", fmt(float(g.foreign_cpu.iloc[0]), 2)])
    return markdown_table(
        ["model", "gen_serial ms", "ORT 1 thr ms", "gen_serial ÷ ORT (target ≤ 1.25)", "tuned convs vs gen_serial",
         "oneDNN Graph vs gen_serial", "plain lowering vs gen_serial", "TorchScript vs gen_serial",
         "torch eager vs gen_serial", "A/A floor", "other procs (cores)"], rows,
        ["l", "r", "r", "l", "l", "l", "l", "l", "l", "r", "r"])


@report_table("parallel.speedups")
def speedup_table() -> str:
    """Every parallel variant's speed-up over the generated serial code (wall clock)."""
    df = load_result("parallel/parallel.csv")
    df = df[~df.is_aa_control.astype(bool)]
    rows = []
    for (model, quick), g in df.groupby(["model", "quick"], sort=False):
        for r in g.itertuples():
            if r.variant == "gen_serial":
                continue
            rows.append([f"`{model}`" + (" (quick)" if bool(quick) else ""), f"`{r.variant}`", fmt(r.value),
                         _sp(r), f"±{100 * float(r.noise_floor):.1f}%"])
    return markdown_table(["model", "variant", "ms", "speed-up over gen_serial [95% CI]", "A/A floor"], rows,
                          ["l", "l", "r", "l", "r"])


@report_table("parallel.plans")
def plans_table() -> str:
    """What the planner decided for each generated variant."""
    df = load_result("parallel/plans.csv")
    rows = []
    for r in df.itertuples():
        if not str(r.variant).startswith(("gen_branch", "gen_hybrid", "gen_verified")):
            continue
        rows.append([f"`{r.model}`", f"`{r.variant}`", fmt(r.value), int(r.parallel_stages), int(r.clusters),
                     int(r.cloned_nodes), "yes" if bool(r.fallback) else "no",
                     str(r.verify) if isinstance(r.verify, str) else "—"])
    return markdown_table(["model", "variant", "predicted speed-up", "parallel stages", "clusters", "cloned kernels",
                           "safety valve (serial emitted)", "measured valve (compile time)"], rows,
                          ["l", "l", "r", "r", "r", "r", "l", "l"])


@report_table("parallel.cloning")
def cloning_table() -> str:
    """The branch plan with and without cloning: clones, prediction and measured effect."""
    df = load_result("parallel/cloning.csv")
    rows = []
    for (model, quick), g in df.groupby(["model", "quick"], sort=False):
        off, on = _row(g, "no_cloning"), _row(g, "cloning")
        if off is None or on is None:
            continue
        rows.append([f"`{model}`" + (" (quick)" if bool(quick) else ""), int(on.cloned_nodes),
                     f"{fmt(off.predicted_us / 1e3)} → {fmt(on.predicted_us / 1e3)}",
                     f"{fmt(off.value)} → {fmt(on.value)}", _sp(on)])
    return markdown_table(["model", "cloned kernels", "predicted ms (off → on)", "measured ms (off → on)",
                           "speed-up of cloning [95% CI]"], rows, ["l", "r", "r", "r", "l"])


@report_table("parallel.targets")
def targets_table() -> str:
    """The issue's targets, each a pairwise comparison from one interleaved measurement."""
    df = load_result("parallel/targets.csv")
    rows = []
    for r in df.itertuples():
        goal = "—" if r.goal != r.goal or r.goal is None else f"≥ {fmt(float(r.goal), 2)}×"
        rows.append([f"`{r.model}`" + (" (quick)" if bool(r.quick) else ""), r.target, f"`{r.variant}` vs `{r.versus}`",
                     fmt_ci(r.value, r.speedup_lo, r.speedup_hi, r.verdict), str(r.clock), goal,
                     r.met if isinstance(r.met, str) else "—", "yes" if bool(r.busy) else "no"])
    return markdown_table(["model", "target", "comparison", "speed-up [95% CI]", "clock", "goal", "met",
                           "machine busy"], rows, ["l", "l", "l", "l", "l", "r", "l", "l"])
