"""Docs tables of the runtime harness (``make report``): zoo latency and the measurement core's own
noise floors and false-positive rates, from committed result files under ``results/runtime/``."""
from __future__ import annotations

from xflow.tables import fmt, fmt_ci, load_result, markdown_table, report_table

__all__: list[str] = []


@report_table("runtime.zoo_latency")
def zoo_latency_table() -> str:
    """ORT latency per zoo model at levels disable / all, with the paired speed-up of ``all``."""
    df = load_result("runtime/zoo_latency.csv")
    rows = []
    for (model, threads), g in df.groupby(["model", "threads"], sort=False):
        med = {r.level: r.value for r in g[g.metric == "latency_median_ms"].itertuples()}
        iqr = {r.level: r.value for r in g[g.metric == "latency_iqr_ms"].itertuples()}
        sp = g[(g.metric.str.startswith("speedup_vs")) & (g.level == "all")]
        s = sp.iloc[0] if len(sp) else None
        rows.append([f"`{model}`", threads,
                     f"{fmt(med.get('disable'))} ± {fmt(iqr.get('disable'))}",
                     f"{fmt(med.get('all'))} ± {fmt(iqr.get('all'))}",
                     fmt_ci(s.value, s.speedup_lo, s.speedup_hi, s.verdict) if s is not None else "—",
                     f"±{100 * float(g.noise_floor.iloc[0]):.1f}%", fmt(float(g.foreign_cpu.iloc[0]), 2),
                     g.clock.iloc[0]])
    return markdown_table(["model", "threads", "disable ms (median ± IQR)", "all ms (median ± IQR)",
                           "speed-up of all [95% CI]", "A/A floor", "other procs (cores)", "clock"], rows,
                          ["l", "r", "r", "r", "l", "r", "r", "l"])


@report_table("runtime.aa_noise")
def aa_noise_table() -> str:
    """A/A noise floor of the measurement core per kind of work (median and max over runs)."""
    df = load_result("runtime/aa_noise.csv")
    rows = []
    for kind, g in df.groupby("kind", sort=False):
        fl = g.floor.sort_values()
        rows.append([kind, len(g), fmt(float(g.median_ms.median()), 3), f"±{100 * fl.median():.2f}%",
                     f"±{100 * fl.max():.2f}%", int(g.rounds.iloc[0]), int(g.busy.sum()),
                     fmt(float(g.foreign_cpu.median()), 2)])
    return markdown_table(["work", "runs", "median ms", "noise floor (median)", "noise floor (max)", "rounds",
                           "busy runs", "other procs (cores, median)"], rows,
                          ["l", "r", "r", "r", "r", "r", "r", "r"])


@report_table("runtime.false_positives")
def false_positive_table() -> str:
    """How often a decider switches away from a baseline it is fed identical copies of."""
    df = load_result("runtime/false_positives.csv")
    rows = []
    for d, g in df.groupby("decider", sort=False):
        n, k = int(g.decisions.sum()), int(g.false_positives.sum())
        rows.append([d, len(g), n, k, f"{100 * k / n:.1f}%" if n else "—"])
    return markdown_table(["decider", "A/A trials", "decisions", "switched (false positives)", "rate"], rows,
                          ["l", "r", "r", "r", "r"])


@report_table("runtime.conv_kernels")
def conv_kernels_table() -> str:
    """Per model: the convolutions' summed time (Σ count × median, thread CPU, 1 thread) under each
    kernel policy, and how often the shape rule's choice was measurably beaten."""
    df = load_result("runtime/conv_kernels.csv")
    df = df[~df.is_aa_control.astype(bool)]
    rows = []
    for model, g in df.groupby("model", sort=False):
        per = {cfg: c for cfg, c in g.groupby("config", sort=False)}
        med = {cfg: dict(zip(c.variant, c.value)) for cfg, c in per.items()}
        count = {cfg: int(c["count"].iloc[0]) for cfg, c in per.items()}
        prior = {cfg: c.prior.iloc[0] for cfg, c in per.items()}
        chosen = {cfg: c.measured_choice.iloc[0] for cfg, c in per.items()}

        def total(pick) -> float:
            return sum(count[k] * med[k][pick(k)] for k in med)
        beaten = sum(1 for k in med if chosen[k] != prior[k])
        rows.append([f"`{model}`", sum(count.values()), len(med),
                     fmt(total(lambda k: "native")), fmt(total(lambda k: "onednn")),
                     fmt(total(lambda k: prior[k])), fmt(total(lambda k: chosen[k])),
                     fmt(total(lambda k: min(med[k], key=med[k].get))), f"{beaten} / {len(med)}",
                     f"±{100 * float(g.noise_floor.median()):.1f}%", "yes" if bool(g.busy.any()) else "no"])
    return markdown_table(["model", "convs", "configs", "F.conv2d everywhere ms", "oneDNN everywhere ms",
                           "shape rule (`auto`) ms", "measured (`tuned`) ms", "fastest median (oracle) ms",
                           "rule beaten significantly", "A/A floor (median)", "busy"], rows,
                          ["l", "r", "r", "r", "r", "r", "r", "r", "r", "r", "l"])
