"""Docs tables of the cost layer (``make report``, ``docs/rl.md``).

* ``costs.fidelity`` — per evaluation model and cost model, Spearman's ρ between predicted and
  measured ORT latency over random rewrites of the model, from ``results/costs/fidelity.csv``
  (``benchmarks/cost_fidelity.py``; ``ort-context`` rows re-score the saved measurements,
  ``--rescore``).
* ``costs.fidelity_torch`` — the same on the torch backend (the generated PyTorch module on the
  CPU), with its own cost model ``torch`` (``cost_fidelity.py --backend torch``).
* ``costs.fidelity_retest`` — per backend and model measured twice (1 and 3 sessions per graph): how
  well the two measurements of the same graphs rank them alike (test-retest ρ), next to the measured
  interval widths and the spread the backend's own cost models predict.
* ``costs.context_ops`` — per op configuration, its time alone and inside the graph
  (``benchmarks/context_op_times.py``).
* ``costs.context_spread`` — ``ort-context``'s ρ with several fresh in-graph tables
  (``benchmarks/context_table_spread.py``).
* ``costs.optable_search_spread`` — greedy search under several fresh ``ort`` op tables, each final
  graph priced under every table (``benchmarks/optable_search_spread.py``).
* ``costs.working_set`` — NASRNN's ``concat_matmul_add`` slowdown split into the operator change and
  the growth of the distinct weights (``benchmarks/weight_working_set.py``).
"""
from __future__ import annotations

from xflow.costs.spearman import spearman_ci
from xflow.tables import fmt, fmt_ci, load_result, markdown_table, quoting, report_table

__all__ = ["TARGET_RHO", "MIN_GRAPHS", "fidelity_table", "fidelity_torch_table", "backend_fidelity_table", "fidelity_retest_table",
           "OWN_MODELS",
           "context_ops_table", "context_spread_table", "optable_search_spread_table", "working_set_table", "working_set_sessions_table"]

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


def backend_fidelity_table(backend: str, own_models: tuple[str, ...]) -> str:
    """One row per evaluation model measured on ``backend``: graphs, measured spread, and ρ [95 %
    bootstrap interval] per cost model; whether each of ``own_models`` (the backend's cost models)
    reaches :data:`TARGET_RHO`. Rows of files written before the ``backend`` column are ORT's."""
    df = load_result("costs/fidelity.csv", defaults={"backend": "ort", "sessions": 1})
    df = df[df["backend"] == backend].astype({"sessions": int})
    if df.empty:
        raise FileNotFoundError(f"results/costs/fidelity.csv has no rows for backend {backend!r}: run "
                                f"benchmarks/cost_fidelity.py --backend {backend}")
    quoting(df)
    cms = list(dict.fromkeys(df["cost_model"]))
    rows = []
    for (m, n_sessions), d in df.groupby(["model", "sessions"], sort=False):  # graph 0: the original
        label = f"`{m}`" + (f" ({n_sessions} sessions per graph)" if n_sessions > 1 else "")
        first = d[d["cost_model"] == cms[0]]
        meas = first["measured_ratio"]
        slower = int((first["verdict"] == "slower").sum())
        faster = int((first["verdict"] == "faster").sum())
        row = [label, str(len(first) - 1), f"{fmt(meas.min(), 2)}–{fmt(meas.max(), 2)}", f"{faster} / {slower}",
               _span(first["rounds"][first["graph"] > 0])]
        row.append(_busy(first))
        enough = len(first) - 1 >= MIN_GRAPHS
        for cm in cms:
            here = d[d["cost_model"] == cm]
            if here.empty:  # a cost model scored on other models only
                row.append("—")
                continue
            r = here.iloc[0]
            row.append(fmt_ci(r["spearman"], r["spearman_lo"], r["spearman_hi"], suffix="") if enough
                       else "— (too few graphs)")
        owned = [cm for cm in own_models if cm in cms]
        for cm in owned:
            here = d[d["cost_model"] == cm]
            if here.empty:
                row.append("— (not scored)")
                continue
            row.append(("met" if here.iloc[0]["spearman"] >= TARGET_RHO else "not met") if enough
                       else f"not measurable (< {MIN_GRAPHS} graphs)")
        rows.append(row)
    target = [f"{cm} ρ ≥ {TARGET_RHO}" for cm in own_models if cm in cms]
    headers = ["model", "graphs", "measured ratio range", "faster / slower", "rounds", "busy chunks",
               *[f"ρ {cm}" for cm in cms], *target]
    return markdown_table(headers, rows, ["l", "r", "r", "r", "r", "r", *["r"] * len(cms)] + ["l"] * len(target))


@report_table("costs.fidelity")
def fidelity_table() -> str:
    """Fidelity against ORT's measured latency; the issue's target is on the ORT-aware models
    (``ort``: one-node op table; ``ort-context``: op times inside a graph)."""
    return backend_fidelity_table("ort", ("ort", "ort-context"))


@report_table("costs.fidelity_torch")
def fidelity_torch_table() -> str:
    """Fidelity against the torch backend's measured latency (generated PyTorch module, CPU)."""
    return backend_fidelity_table("torch", ("torch",))


#: Each backend's own cost models (the ones the target is judged on).
OWN_MODELS = {"ort": ("ort", "ort-context"), "torch": ("torch",)}


@report_table("costs.fidelity_retest")
def fidelity_retest_table() -> str:
    """Test-retest of the fidelity measurements: per backend and model measured both with 1 and with
    3 sessions per graph, Spearman's ρ between the two measured ratios of the same rewritten graphs
    (matched by hash; the original, 1 by definition, left out) with a 95 % bootstrap interval.

    A cost model's ρ against a measurement can only be judged where the measurement's own ranking
    reproduces: when two measurements of the same graphs do not rank them alike (the interval
    includes 0), a cost model's ρ against either is noise, whatever the model. The table puts that
    next to the 3-session measurement's median interval width and the range of ratios the backend's
    own cost models predict (an effect well inside the interval cannot be ranked)."""
    df = load_result("costs/fidelity.csv", defaults={"backend": "ort", "sessions": 1})
    df = df.astype({"sessions": int})
    quoting(df)
    rows = []
    for (backend, m), d in df.groupby(["backend", "model"], sort=False):
        cm0 = d["cost_model"].iloc[0]
        one = d[(d["sessions"] == 1) & (d["cost_model"] == cm0) & (d["graph"] > 0)].set_index("hash")
        three = d[(d["sessions"] == 3) & (d["cost_model"] == cm0) & (d["graph"] > 0)].set_index("hash")
        both = one.index.intersection(three.index)
        if one.empty or three.empty:
            continue
        own = [cm for cm in OWN_MODELS.get(backend, ()) if cm in set(d["cost_model"])]
        pred = []
        for cm in own:
            p = d[(d["sessions"] == 3) & (d["cost_model"] == cm)]["predicted_ratio"]
            pred.append(f"{cm} {fmt(p.min(), 3)}–{fmt(p.max(), 3)}" if not p.empty else f"{cm} —")
        width = (three.loc[both, "measured_hi"] - three.loc[both, "measured_lo"]).median()
        meas3 = three.loc[both, "measured_ratio"]
        row = [backend, f"`{m}`", str(len(both)), f"{fmt(meas3.min(), 3)}–{fmt(meas3.max(), 3)}" if len(both) else "—",
               f"{100 * width:.1f} %" if len(both) else "—", "; ".join(pred) or "—"]
        if len(both) < MIN_GRAPHS:
            row += ["— (too few graphs)", f"not measurable (< {MIN_GRAPHS} graphs)"]
        else:
            rho, lo, hi = spearman_ci(one.loc[both, "measured_ratio"], meas3, seed=0)
            row += [fmt_ci(rho, lo, hi, suffix=""),
                    "yes" if lo > 0 else "no: a cost model's ρ against it is not decidable"]
        rows.append(row)
    return markdown_table(["backend", "model", "graphs in both", "measured ratio range (3 sessions)",
                           "median 95 % interval width (3 sessions)", "predicted ratio range (own models)",
                           "test-retest ρ (1 vs 3 sessions)", "measured ranking reproduces"],
                          rows, ["l", "l", "r", "r", "r", "l", "r", "l"])


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


@report_table("costs.working_set")
def working_set_table() -> str:
    """Per backend and variant: the weights held beyond the original's, the ORT-aware model's
    predicted ratio, and per run (seed) the measured ratio to the original [95 % interval] and
    verdict; the last column says whether the runs' verdicts agree."""
    df = load_result("costs/working_set.csv", defaults={"seed": 0})
    seeds = sorted(df["seed"].unique())
    rows = []
    for (backend, variant), d in df.groupby(["backend", "variant"], sort=False):
        r0 = d.iloc[0]
        runs = {int(r.seed): r for r in d.itertuples()}
        cells = ["—" if s not in runs else ("baseline" if runs[s].verdict == "baseline" else
                 fmt_ci(runs[s].ratio, runs[s].lo, runs[s].hi, suffix="×") + f" {runs[s].verdict}"
                 + (" (busy)" if bool(runs[s].busy) else "")) for s in seeds]
        verdicts = {runs[s].verdict for s in seeds if s in runs}
        agree = "—" if verdicts == {"baseline"} else ("yes" if len(verdicts) == 1 else "no")
        rows.append([backend, f"`{variant}`", f"{r0.extra_weight_mib:+.1f} MiB", int(r0.nodes),
                     f"{r0.predicted_ort:.4f}", *cells, agree])
    return markdown_table(["backend", "variant", "weights held vs original", "nodes", "predicted (ort model)",
                           *[f"run {i + 1}: time vs original" for i in range(len(seeds))], "runs agree"],
                          rows, ["l", "l", "r", "r", "r", *["r"] * len(seeds), "l"])


@report_table("costs.working_set_sessions")
def working_set_sessions_table() -> str:
    """Several ORT sessions per variant in one run: each session's ratio to the original's first
    session [95 % interval] and verdict, and how many sessions are significantly slower."""
    df = load_result("costs/working_set_sessions.csv")
    rows = []
    for variant, d in df.groupby("variant", sort=False):
        d = d.sort_values("session")
        cells = ["baseline" if r.verdict == "baseline" else fmt_ci(r.ratio, r.lo, r.hi, suffix="×") + f" {r.verdict}"
                 for r in d.itertuples()]
        timed = d[d.verdict != "baseline"]
        rows.append([f"`{variant}`", " · ".join(cells), f"{int((timed.verdict == 'slower').sum())} / {len(timed)}",
                     f"{d.median_ms.min():.2f}–{d.median_ms.max():.2f} ms", "yes" if d.busy.astype(bool).any() else "no"])
    return markdown_table(["variant", "sessions vs original #0", "slower", "time range (thread CPU, median)", "busy"],
                          rows, ["l", "l", "r", "r", "l"])


@report_table("costs.context_ops")
def context_ops_table() -> str:
    """Per op configuration of a fidelity pool's optimized graphs (``benchmarks/context_op_times.py``):
    its time alone (the ``ort`` table) and inside the first graph that has it (``ort-context``), the
    ratio, how many nodes of the pool have it and the rewrite that first made it."""
    df = load_result("costs/context_ops.csv", defaults={"attrs": ""})
    quoting(df)
    rows = [[f"`{r.model}`", f"`{r.op}`", r.inputs if isinstance(r.inputs, str) else "",
             r.attrs if isinstance(r.attrs, str) else "", f"`{r.first_rule}`",
             int(r.nodes), f"{1000 * r.alone_ms:.1f} µs", f"{1000 * r.context_ms:.1f} µs",
             "—" if r.alone_ms <= 0 else f"{r.context_over_alone:.2f}×"] for r in df.itertuples()]
    return markdown_table(["model", "op", "inputs (W: constant)", "attributes", "first made by", "nodes in the pool", "alone (ort)",
                           "in the graph (ort-context)", "in graph / alone"],
                          rows, ["l", "l", "l", "l", "l", "r", "r", "r", "r"])


def _rule_counts(rules: str) -> str:
    """``"a a b"`` → ``"2× a, b"`` (a search's rewrites, in first-use order)."""
    names = rules.split() if isinstance(rules, str) else []
    counts = {n: names.count(n) for n in dict.fromkeys(names)}
    return ", ".join(f"{c}× {n}" if c > 1 else n for n, c in counts.items()) or "none"


@report_table("costs.optable_search_spread")
def optable_search_spread_table() -> str:
    """Per model and greedy run (each under its own fresh ``ort`` op table,
    ``benchmarks/optable_search_spread.py``): its rewrites, its final graph's predicted cost ratio
    under its own table and the range under the other tables, and how many distinct final graphs
    the runs reached."""
    df = load_result("costs/optable_search_spread.csv")
    quoting(df)
    rows = []
    for model, d in df.groupby("model", sort=False):
        distinct = d.drop_duplicates("graph_run").graph_hash.nunique()
        for run, g in d.groupby("graph_run", sort=True):
            own = g[g["own"].astype(str).str.lower() == "true"]
            others = g[g["own"].astype(str).str.lower() != "true"]
            first = g.iloc[0]
            span = (f"{fmt(others.ratio.min(), 4)}–{fmt(others.ratio.max(), 4)}" if len(others) else "—")
            rows.append([f"`{model}`", int(run), f"{int(first.n_rewrites)}: {_rule_counts(first.rules)}",
                         fmt(own.ratio.iloc[0], 4) if len(own) else "—", span, f"{distinct} / {d.graph_run.nunique()}"])
    return markdown_table(["model", "greedy run (= its table)", "rewrites", "predicted ratio, own table",
                           "under the other tables", "distinct final graphs"], rows, ["l", "r", "l", "r", "r", "r"])


@report_table("costs.context_spread")
def context_spread_table() -> str:
    """Per model, ``ort-context``'s ρ [95 % bootstrap interval] with each of several fresh in-graph
    tables (``benchmarks/context_table_spread.py``), against the same saved measurements."""
    df = load_result("costs/context_spread.csv")
    quoting(df)
    rows = []
    for (model, sessions), d in df.groupby(["model", "sessions"], sort=False):
        d = d.sort_values("run")
        cells = " · ".join(fmt_ci(r.spearman, r.spearman_lo, r.spearman_hi, suffix="") for r in d.itertuples())
        rows.append([f"`{model}`", int(sessions), len(d), cells,
                     f"{fmt(d.spearman.min(), 2)}–{fmt(d.spearman.max(), 2)}",
                     f"{int((d.spearman >= TARGET_RHO).sum())} / {len(d)}"])
    return markdown_table(["model", "sessions per graph (measured)", "tables", "ρ ort-context per fresh table",
                           "range", f"tables with ρ ≥ {TARGET_RHO}"], rows, ["l", "r", "r", "l", "r", "r"])
