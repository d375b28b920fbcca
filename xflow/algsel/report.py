"""Docs tables of algorithm selection (``make report`` → docs/algsel.md).

Registry tables are generated from the code (:mod:`xflow.algsel.ops`); measured tables from the
committed result files ``results/algsel/{e2e,layers,memory,errors}.csv`` written by
``benchmarks/algsel_latency.py``. Every speed-up is printed with its 95 % interval and verdict.
"""
from __future__ import annotations

from xflow.tables import fmt, fmt_ci, load_result, markdown_table, report_table

__all__: list[str] = []

#: Targets of issue 16 (VGG16 / ResNet-50 autotuned vs torch default, batch 1, 224 px, 1 thread).
TARGETS = {"vgg16": 1.15, "resnet50": 1.05}


@report_table("algsel.registry")
def registry_table() -> str:
    """Every registered algorithm of every family: what it does, devices, training, tolerance."""
    from xflow.algsel.ops import FAMILIES

    rows = []
    for op, fam in FAMILIES.items():
        for n in fam.names():
            a = fam.get(n)
            rows.append([op, f"`{n}`", a.summary, "/".join(a.devices), "yes" if a.differentiable else "inference only",
                         f"{a.tolerance:.0e}"])
    return markdown_table(["family", "name", "what", "devices", "training", "tolerance (max rel err, fp32)"], rows)


def _e2e():
    df = load_result("algsel/e2e.csv")
    return df[df.kind == "e2e"]


def _val(g, sel, metric):
    r = g[(g.selection == sel) & (g.metric == metric)]
    return r.iloc[0] if len(r) else None


def _speed(g, sel):
    r = _val(g, sel, "speedup_vs_torch")
    if r is None:
        return "—"
    if r.verdict == "pruned":
        return f"{r.value:.2f}× (pruned: timed once)"
    return fmt_ci(r.value, r.speedup_lo, r.speedup_hi, r.verdict)


def _layout(g, sel):
    r = _val(g, sel, "speedup_vs_torch")
    return r.layout if r is not None and "layout" in r and isinstance(r.layout, str) else "—"


def target_status(value: float, lo: float, target: float) -> str:
    """Status of a speed-up target "≥ ``target``× with the interval excluding 1": met when the point
    speed-up reaches the target and the interval's lower end is above 1 (``met, interval above
    target`` when even the lower end reaches it)."""
    if lo >= target:
        return "met, interval above target"
    if value >= target and lo > 1:
        return "met"
    if lo > 1:
        return "interval excludes 1, below target"
    return "not met"


@report_table("algsel.targets")
def targets_table() -> str:
    """Issue 16's targets: autotuned vs torch default (inference) and training-tuned vs default."""
    df = _e2e()
    rows = []
    for model, target in TARGETS.items():
        g = df[(df.model == model) & (df["mode"] == "inference") & (df.batch == 1)]
        r = _val(g, "autotuned", "speedup_vs_torch")
        if r is not None:
            rows.append([model, "inference", f"≥ {target}×, interval excluding 1", _speed(g, "autotuned"),
                         target_status(r.value, r.speedup_lo, target)])
    for model in sorted(set(df[df["mode"] == "train"].model)):
        g = df[(df.model == model) & (df["mode"] == "train")]
        r = _val(g, "autotuned", "speedup_vs_torch")
        if r is not None:
            rows.append([model, "train", "never slower than default", _speed(g, "autotuned"),
                         "met" if r.verdict != "slower" else "not met"])
    return markdown_table(["model", "mode", "target", "autotuned vs torch default [95% CI]", "status"], rows)


@report_table("algsel.inference")
def inference_table() -> str:
    """End to end, inference: torch, torch channels_last, autotuned (chosen layout), best uniform."""
    df = _e2e()
    df = df[df["mode"] == "inference"]
    rows = []
    for (model, batch, image), g in df.groupby(["model", "batch", "image"], sort=False):
        t = _val(g, "torch", "e2e_ms")
        ti = _val(g, "torch", "e2e_iqr_ms")
        uni = g[(g.selection.str.startswith("uniform:")) & (g.metric == "speedup_vs_torch")
                & (g.selection != "uniform:default")]
        best = uni.sort_values("value").iloc[-1] if len(uni) else None
        rows.append([model, int(batch), int(image), f"{fmt(t.value)} ± {fmt(ti.value)}" if t is not None else "—",
                     _speed(g, "torch:channels_last"), f"{_speed(g, 'autotuned')} ({_layout(g, 'autotuned')})",
                     f"{best.selection.split(':', 1)[1]} {_speed(g, best.selection)}" if best is not None else "—",
                     f"±{100 * float(t.noise_floor):.1f}%" if t is not None else "—",
                     fmt(float(t.foreign_cpu), 2) if t is not None and "foreign_cpu" in t else "—"])
    return markdown_table(["model", "batch", "px", "torch ms (median ± IQR)", "torch channels_last", "autotuned (layout)",
                           "best uniform conv algorithm", "A/A floor", "other procs (cores)"], rows,
                          ["l", "r", "r", "r", "l", "l", "l", "r", "r"])


@report_table("algsel.uniform")
def uniform_table() -> str:
    """Every uniform conv algorithm end to end (all convs on one algorithm, fallbacks to default)."""
    df = _e2e()
    df = df[(df["mode"] == "inference") & df.selection.str.startswith("uniform:")]
    models = list(dict.fromkeys(df.model))
    algos = list(dict.fromkeys(df.selection))
    rows = []
    for a in algos:
        cells = []
        for m in models:
            g = df[(df.model == m) & (df.batch == 1)]
            cells.append(_speed(g, a))
        rows.append([f"`{a.split(':', 1)[1]}`", *cells])
    return markdown_table(["algorithm", *[f"{m} b1" for m in models]], rows)


@report_table("algsel.train")
def train_table() -> str:
    """Training steps: torch default, training-tuned, inference-tuned; numeric error of one step."""
    df = _e2e()
    df = df[df["mode"] == "train"]
    rows = []
    for (model, batch, image), g in df.groupby(["model", "batch", "image"], sort=False):
        t, ti = _val(g, "torch", "e2e_ms"), _val(g, "torch", "e2e_iqr_ms")
        a = _val(g, "autotuned", "grad_max_rel_err")
        rows.append([model, int(batch), int(image), f"{fmt(t.value)} ± {fmt(ti.value)}",
                     f"{_speed(g, 'autotuned')} ({_layout(g, 'autotuned')})",
                     f"{_speed(g, 'inference-tuned')} ({_layout(g, 'inference-tuned')})",
                     f"{a.value:.1e}" if a is not None else "—", f"±{100 * float(t.noise_floor):.1f}%"])
    return markdown_table(["model", "batch", "px", "torch step ms (median ± IQR)", "training-tuned (layout)",
                           "inference-tuned, trained (layout)", "grad rel err (tuned)", "A/A floor"], rows,
                          ["l", "r", "r", "r", "l", "l", "r", "r"])


@report_table("algsel.choices")
def choices_table() -> str:
    """Which layers switched away from default (chosen layout), with the per-layer speed-up."""
    df = load_result("algsel/layers.csv")
    df = df[df.chosen_layout.astype(str) == "True"]
    rows = []
    for (model, mode, batch), g in df.groupby(["model", "mode", "batch"], sort=False):
        lay = g.drop_duplicates("layer")
        n_default = int((lay.choice == "default").sum())
        for r in lay[lay.choice != "default"].itertuples():
            c = g[(g.layer == r.layer) & (g.algorithm == r.choice)].iloc[0]
            d = g[(g.layer == r.layer) & (g.algorithm == "default")].iloc[0]
            rows.append([model, mode, int(batch), r.layout, f"`{r.layer}`", r.op, r.config, r.input_shape, f"`{r.choice}`",
                         f"{fmt(d.value)} → {fmt(c.value)}", fmt_ci(1 / c.ratio, 1 / c.ci_hi, 1 / c.ci_lo, c.verdict)])
        rows.append([model, mode, int(batch), lay.layout.iloc[0], f"{n_default} other layers", "", "", "", "`default`", "", ""])
    return markdown_table(["model", "mode", "batch", "layout", "layer", "family", "config", "input", "choice",
                           "ms default → choice", "layer speed-up [CI]"], rows)


@report_table("algsel.memory")
def memory_table() -> str:
    """Memory kept for cached transforms: uniform algorithms, the FFT's unbounded spectra, the tuned model."""
    df = load_result("algsel/memory.csv")
    rows = []
    def mib(v):
        if v is None:
            return "—"
        return f"{v / 2**20:,.0f}" if v >= 2**20 else f"{v / 2**20:.2f}"
    for (model, mode, batch), g in df.groupby(["model", "mode", "batch"], sort=False):
        v = dict(zip(g.selection, g.value))
        rows.append([model, mode, int(batch), mib(v["params:conv"]), mib(v["params:all"]),
                     mib(v.get("uniform:winograd_4x4")), mib(v["fft:unbounded"]), mib(v["fft:largest_layer"]),
                     mib(v.get("uniform:fft")), mib(v["autotuned"]), mib(v["budget"])])
    return markdown_table(["model", "mode", "batch", "conv weights", "all weights", "uniform winograd_4x4 cached",
                           "FFT spectra, unbounded", "largest layer's spectrum", "uniform fft cached (bounded)",
                           "autotuned cached", "budget"], rows, ["l", "l", "r"] + ["r"] * 8)


@report_table("algsel.errors")
def errors_table() -> str:
    """Numeric error per conv algorithm: worst layer vs F.conv2d, uniform end to end vs torch."""
    lay = load_result("algsel/errors.csv")
    e2e = _e2e()
    e2e = e2e[(e2e["mode"] == "inference") & (e2e.metric == "max_rel_err")]
    rows = []
    for a, g in lay.groupby("algorithm", sort=False):
        u = e2e[e2e.selection == f"uniform:{a}"]
        rows.append([f"`{a}`", f"{g.value.max():.1e}", f"{u.value.max():.1e}" if len(u) else "—"])
    t = e2e[e2e.selection == "autotuned"]
    rows.append(["autotuned", "—", f"{t.value.max():.1e}" if len(t) else "—"])
    return markdown_table(["algorithm", "worst layer vs F.conv2d", "worst model output (uniform) vs torch"], rows)
