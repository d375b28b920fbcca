"""Docs tables of ``docs/autobatch.md`` (``make report``), built from ``results/autobatch/throughput.csv``.

That file is written by ``benchmarks/autobatch_throughput.py`` (one command; ``--quick`` writes
``throughput_quick.csv`` instead, which no table reads). Every ratio cell is the measurement core's
paired interval and verdict on thread CPU time; nothing here is typed by hand.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

from xflow.tables import fmt, fmt_ci, load_result, markdown_table, report_table

__all__ = ["TARGETS", "RESULT_FILE", "target_status"]

RESULT_FILE = "autobatch/throughput.csv"

#: Implementations in table order, with their column titles.
COLUMNS = (("eager", "eager"), ("depth", "`depth`"), ("agenda", "`agenda`"), ("agenda-unfused", "`agenda` unfused"),
           ("hand", "hand-batched"), ("dynet1", "DyNet autobatch"), ("dynet1-unfused", "DyNet autobatch unfused"))
MODEL_ORDER = ("bilstm", "bilstm-char", "treelstm", "parser")
MODEL_TITLE = {"bilstm": "BiLSTM tagger", "bilstm-char": "BiLSTM + char", "treelstm": "Tree-LSTM",
               "parser": "transition parser"}

#: The issue's targets: (mode, a, b or a tuple of alternatives, minimum speed-up of a over b, models, label).
TARGETS: tuple[tuple[str, str, Any, float, tuple[str, ...], str], ...] = (
    ("train", "agenda", ("dynet1", "dynet1-unfused"), 1.0, MODEL_ORDER, "training ≥ 1.0× DyNet autobatched"),
    ("train", "agenda", "eager", 5.0, ("bilstm",), "training ≥ 5× eager"),
    ("infer", "agenda", "eager", 2.0, MODEL_ORDER, "inference ≥ 2× eager"),
    ("train", "agenda", "hand", 1 / 1.5, MODEL_ORDER, "training within 1.5× of hand-batched"),
    ("infer", "agenda", "hand", 1 / 1.5, MODEL_ORDER, "inference within 1.5× of hand-batched"),
)

#: Who else is held to each target in the targets table, by the target's baseline: against DyNet,
#: hand-batched PyTorch (the best xflow could do by staying on PyTorch's per-op path); against
#: hand-batched PyTorch and eager, DyNet itself (the reference system). First available wins.
REFERENCES: dict[str, tuple[str, ...]] = {
    "dynet1": ("hand",), "dynet1-unfused": ("hand",),
    "hand": ("dynet1", "dynet1-unfused"), "eager": ("dynet1", "dynet1-unfused", "hand"),
}


def _frame():
    df = load_result(RESULT_FILE)
    return df[df.preset == "full"] if (df.preset == "full").any() else df


def _models(df) -> list[str]:
    have = set(df.model)
    return [m for m in MODEL_ORDER if m in have]


def _speedup(df, model: str, mode: str, a: str, b: str):
    s = df[(df.metric == "speedup") & (df.model == model) & (df["mode"] == mode) & (df.a == a) & (df.b == b)]
    return s.iloc[0] if len(s) else None


class _Inverted(NamedTuple):
    """A speed-up row read the other way round (``b`` over ``a``)."""

    value: float
    lo: float
    hi: float
    verdict: str


_FLIP = {"faster": "slower", "slower": "faster"}


def _pair(df, model: str, mode: str, a: str, b: str):
    """The speed-up of ``a`` over ``b``: the measured row, or the row of ``b`` over ``a`` inverted
    (value and interval ends reciprocal, verdict mirrored); ``None`` when neither was measured."""
    r = _speedup(df, model, mode, a, b)
    if r is not None:
        return r
    r = _speedup(df, model, mode, b, a)
    if r is None:
        return None
    return _Inverted(1 / float(r.value), 1 / float(r.hi), 1 / float(r.lo), _FLIP.get(r.verdict, r.verdict))


def _rate(v: Any) -> str:
    """A throughput cell: 3 significant digits, no exponent."""
    if v is None or not math.isfinite(float(v)):
        return "—"
    v = float(v)
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def _cell(row) -> str:
    return "—" if row is None else fmt_ci(row.value, row.lo, row.hi, row.verdict)


def target_status(value: float, lo: float, hi: float, target: float) -> str:
    """``met`` when the whole interval clears the target, ``missed`` when it lies below, else ``unclear``."""
    if lo >= target:
        return "met"
    if hi < target:
        return "missed"
    return "unclear"


@report_table("autobatch.throughput")
def throughput_table() -> str:
    """Examples per second (thread CPU time) of every implementation, per model and mode."""
    df = _frame()
    t = df[(df.metric == "time_ms")]
    present = [(k, title) for k, title in COLUMNS if k in set(t.variant)]
    rows = []
    for mode in ("train", "infer"):
        for m in _models(df):
            g = t[(t.model == m) & (t["mode"] == mode)].set_index("variant")
            if g.empty:
                continue
            unit = g.unit.iloc[0]
            rows.append([f"{MODEL_TITLE.get(m, m)} ({unit}/s)", mode]
                        + [_rate(g.throughput[k]) if k in g.index else "—" for k, _ in present])
    return markdown_table(["model", "mode"] + [t for _, t in present], rows, ["l", "l"] + ["r"] * len(present))


@report_table("autobatch.ratios")
def ratio_table() -> str:
    """How many times faster xflow's ``agenda`` is than each peer (paired 95% interval, verdict)."""
    df = _frame()
    pairs = [("train", "agenda", "eager"), ("train", "agenda", "hand"), ("train", "agenda", "depth"),
             ("train", "agenda", "dynet1"), ("train", "agenda", "dynet1-unfused"),
             ("train", "agenda-unfused", "dynet1-unfused"), ("infer", "agenda", "eager"), ("infer", "agenda", "hand"),
             ("infer", "agenda", "dynet1"), ("infer", "agenda", "dynet1-unfused")]
    keep = [p for p in pairs if any(_speedup(df, m, *p) is not None for m in _models(df))]
    rows = [[MODEL_TITLE.get(m, m)] + [_cell(_speedup(df, m, *p)) for p in keep] for m in _models(df)]
    head = [f"{mode}: {a.replace('agenda-unfused', 'agenda unfused')} vs {b}" for mode, a, b in keep]
    return markdown_table(["model"] + head, rows)


@report_table("autobatch.targets")
def targets_table() -> str:
    """The issue's targets against the measured intervals (met only when the whole interval clears
    it), and the same target applied to a reference implementation of the same run
    (:data:`REFERENCES`): is the bar one the reference itself clears?"""
    df = _frame()
    rows = []
    for mode, a, b, target, models, label in TARGETS:
        for m in models:
            if m not in set(df.model):
                continue
            alts = b if isinstance(b, tuple) else (b,)
            got = [(bb, _speedup(df, m, mode, a, bb)) for bb in alts]
            got = [(bb, r) for bb, r in got if r is not None]
            if not got:
                continue
            bb, r = got[0]
            ref = "—"
            for ra in REFERENCES.get(bb, ()):
                rr = _pair(df, m, mode, ra, bb)
                if rr is not None:
                    ref = f"{ra} vs {bb}: {_cell(rr)} ({target_status(rr.value, rr.lo, rr.hi, target)})"
                    break
            rows.append([label, MODEL_TITLE.get(m, m), f"{a} vs {bb}", f"{target:.2f}×", _cell(r),
                         target_status(r.value, r.lo, r.hi, target), ref])
    return markdown_table(["target", "model", "pair", "needs", "measured [95% CI]", "status",
                           "the same target for a reference"], rows)


@report_table("autobatch.anatomy")
def anatomy_table() -> str:
    """One training step of ``agenda``: recording and forward shares, graph size and gathers."""
    df = _frame()
    rows = []
    for m in _models(df):
        t = df[(df.metric == "time_ms") & (df.model == m) & (df["mode"] == "train")].set_index("variant")
        gs = df[(df.metric == "graph") & (df.model == m) & (df["mode"] == "train") & (df.variant == "agenda")]
        st = dict(zip(gs.stat, gs.value))
        if "agenda" not in t.index:
            continue
        step = float(t.value["agenda"])
        rec = float(t.value["agenda:record"]) if "agenda:record" in t.index else math.nan
        fwd = float(t.value["agenda:forward"]) if "agenda:forward" in t.index else math.nan
        # phases are differences of medians of separately timed variants: a negative one is noise
        pct = (lambda x: "≈ 0 (noise)" if x < 0 else f"{x:.1f} ({100 * x / step:.0f}%)") if step > 0 else fmt
        rows.append([MODEL_TITLE.get(m, m), f"{step:.1f}", pct(rec), pct(fwd - rec), pct(step - fwd),
                     fmt(int(st.get("n_nodes", 0))), fmt(int(st.get("n_groups", 0))),
                     " / ".join(fmt(int(st.get(f"gathers_{k}", 0))) for k in ("view", "expand", "index", "runs", "multi")),
                     fmt(int(st.get("rows_copied", 0)))])
    return markdown_table(["model", "step ms", "recording ms", "plan + batched forward ms", "backward + update ms",
                           "nodes", "batches", "gathers view / expand / index / runs / multi", "rows copied"], rows,
                          ["l"] + ["r"] * 8)


@report_table("autobatch.anatomy_infer")
def anatomy_infer_table() -> str:
    """One inference step of ``agenda`` split into recording and plan + batched forward, beside the
    hand-batched step of the same rounds (rows measured before the inference phase was: skipped)."""
    df = _frame()
    rows = []
    for m in _models(df):
        t = df[(df.metric == "time_ms") & (df.model == m) & (df["mode"] == "infer")].set_index("variant")
        if "agenda" not in t.index or "agenda:record" not in t.index:
            continue
        step = float(t.value["agenda"])
        rec = float(t.value["agenda:record"])
        hand = float(t.value["hand"]) if "hand" in t.index else math.nan
        sp = df[(df.metric == "speedup") & (df.model == m) & (df["mode"] == "infer") & (df.a == "agenda")
                & (df.b == "hand")]
        ratio = fmt_ci(float(sp.value.iloc[0]), float(sp.lo.iloc[0]), float(sp.hi.iloc[0]), sp.verdict.iloc[0]) \
            if len(sp) else "—"
        fwd = step - rec  # a difference of medians of separately timed variants: a negative one is noise
        rows.append([MODEL_TITLE.get(m, m), f"{step:.1f}", f"{rec:.1f} ({100 * rec / step:.0f}%)",
                     "≈ 0 (noise)" if fwd < 0 else f"{fwd:.1f} ({100 * fwd / step:.0f}%)",
                     fmt(hand, 1), "—" if fwd < 0 else fmt(fwd - hand, 1), ratio])
    return markdown_table(["model", "agenda step ms", "recording ms", "plan + batched forward ms",
                           "hand-batched step ms", "forward − hand ms", "agenda vs hand [95% CI]"], rows,
                          ["l", "r", "r", "r", "r", "r", "l"])


@report_table("autobatch.conditions")
def conditions_table() -> str:
    """Run conditions per model and mode: rounds, load, other processes' CPU, contention, A/A floor."""
    df = _frame()
    rows = []
    for m in _models(df):
        for mode in ("train", "infer"):
            t = df[(df.metric == "time_ms") & (df.model == m) & (df["mode"] == mode)]
            if t.empty:
                continue
            ag = t[t.variant == t.baseline.iloc[0]]
            r = t.iloc[0]
            rows.append([MODEL_TITLE.get(m, m), mode, int(r.batch), int(r.rounds), r.clock,
                         f"{fmt(r.load_before, 2)} → {fmt(r.load_after, 2)}", fmt(r.foreign_cpu, 2),
                         "yes" if bool(r.busy) else "no",
                         fmt(float(ag.contention.iloc[0]), 2) if len(ag) else "—",
                         f"±{100 * float(r.noise_floor):.1f}%"])
    return markdown_table(["model", "mode", "minibatch", "rounds", "deciding clock", "load (1 min)",
                           "other procs (cores)", "busy", "wall / CPU (agenda)", "A/A floor"], rows)


SWITCHES_FILE = "autobatch/switches.csv"


@report_table("autobatch.switches")
def switches_table() -> str:
    """Each design switch off vs on, one training or inference step in-process (``benchmarks/autobatch_switches.py``)."""
    df = load_result(SWITCHES_FILE)
    def gc_ms(r: Any) -> str:  # GC time per step, off → on (rows measured before it was recorded: —)
        off, on = fmt(getattr(r, "gc_off_ms", None), 1), fmt(getattr(r, "gc_on_ms", None), 1)
        return "—" if "—" in (off, on) else f"{off} → {on}"

    def step(r: Any) -> str:  # rows measured before inference steps were: training
        mode = getattr(r, "mode", None)
        return "inference" if mode == "infer" else "training"

    rows = [[f"`{r.switch}`", MODEL_TITLE.get(r.model, r.model), step(r), "on" if bool(r.default) else "off",
             f"{r.off_ms:.1f}", f"{r.on_ms:.1f}", fmt_ci(r.value, r.lo, r.hi, r.verdict),
             f"±{100 * float(r.noise_floor):.1f}%", gc_ms(r), "yes" if bool(r.busy) else "no"]
            for r in df.itertuples()]
    return markdown_table(["switch", "model", "step", "default", "off: step ms", "on: step ms", "on vs off [95% CI]",
                           "A/A floor", "GC ms/step off → on", "busy"], rows,
                          ["l", "l", "l", "l", "r", "r", "l", "r", "r", "l"])
