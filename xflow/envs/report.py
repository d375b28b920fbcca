"""Docs tables of the graph-rewrite environment (``make report``, ``docs/rl.md``).

* ``envs.env_step`` — step time (candidate generation + featurization) before and after the
  graph-core change, from ``results/envs/env_step.csv`` (the earlier ``benchmarks/env_step.py``).
* ``envs.env_bench`` / ``envs.env_memory`` — step time of random rollouts (incremental env, and
  the from-scratch reference) and memory over the rollout, from ``results/envs/env_bench.csv``
  (``benchmarks/env_step.py`` / ``xflow rl env-bench --save``).
"""
from __future__ import annotations

import itertools

import numpy as np

from xflow.tables import fmt, fmt_ci, load_result, markdown_table, quoting, report_table

__all__ = ["ratio_interval"]


def ratio_interval(a_ms: np.ndarray, b_ms: np.ndarray, *, level: float = 0.95, n_boot: int = 4000,
                   seed: int = 0) -> tuple[float, float, float]:
    r"""Ratio of medians :math:`\mathrm{med}(a)/\mathrm{med}(b)` of two *independent* runs (different
    checkouts cannot share interleaved rounds) with a percentile bootstrap interval that resamples
    each run separately. Returns ``(ratio, lo, hi)``."""
    a, b = np.asarray(a_ms, float), np.asarray(b_ms, float)
    rng = np.random.default_rng(seed)
    ra = np.median(a[rng.integers(0, a.size, (n_boot, a.size))], axis=1)
    rb = np.median(b[rng.integers(0, b.size, (n_boot, b.size))], axis=1)
    tail = (1 - level) / 2
    lo, hi = np.quantile(ra / rb, [tail, 1 - tail])
    return float(np.median(a) / np.median(b)), float(lo), float(hi)


def _samples(s: str) -> np.ndarray:
    return np.array([float(x) for x in str(s).split(";") if x])


@report_table("envs.env_step")
def env_step_table() -> str:
    """One env step per model and checkout: median thread-CPU ms [IQR], wall ms, contention, and
    the before/after speed-up of the median with its 95 % bootstrap interval."""
    df = load_result("envs/env_step.csv")
    df = df[~df["is_aa_control"].astype(bool)]
    rows = []
    for model, d in df.groupby("model", sort=True):
        by = {r.label: r for r in d.itertuples()}
        for label in ("before", "after"):
            r = by.get(label)
            if r is None:
                continue
            speed = "—"
            if label == "after" and "before" in by:
                ratio, lo, hi = ratio_interval(_samples(by["before"].samples_ms), _samples(r.samples_ms))
                speed = f"{ratio:.1f}× [{lo:.1f}, {hi:.1f}]"
            rows.append([f"`{model}`", label, f"{r.candidates_before} → {r.candidates_after}",
                         f"{fmt(r.thread_cpu_ms / 1e3, 2)} s (IQR {fmt(r.iqr_ms / 1e3, 2)})",
                         f"{fmt(r.wall_ms / 1e3, 2)} s", fmt(r.contention, 2), len(_samples(r.samples_ms)),
                         f"{r.git_sha}"[:10], speed])
    return markdown_table(["model", "code", "candidates", "step (thread CPU, median)", "wall", "wall/CPU",
                           "rounds", "git", "speed-up (before/after)"], rows,
                          ["l", "l", "r", "r", "r", "r", "r", "l", "r"])


def _mb(x) -> str:
    return "—" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{float(x):.0f}"


@report_table("envs.env_bench")
def env_bench_table() -> str:
    """Env step of a seeded random rollout per model and mode: median thread-CPU ms [IQR], wall,
    candidates and re-checked sites per step (medians), and the from-scratch/incremental ratio of
    medians with its 95 % bootstrap interval (independent runs)."""
    df = load_result("envs/env_bench.csv")
    df = df[~df["is_aa_control"].astype(bool)]
    rows = []
    for (model, label), d in df.groupby(["model", "label"], sort=True):
        by = {r.mode: r for r in d.itertuples()}
        for mode in ("from-scratch", "incremental"):
            r = by.get(mode)
            if r is None:
                continue
            speed = "—"
            if mode == "incremental" and "from-scratch" in by:
                ratio, lo, hi = ratio_interval(_samples(by["from-scratch"].samples_ms), _samples(r.samples_ms))
                speed = f"{ratio:.1f}× [{lo:.1f}, {hi:.1f}]"
            rows.append([f"`{model}`", mode, f"{r.thread_cpu_ms:.1f} ms (IQR {r.iqr_ms:.1f})",
                         f"{r.wall_ms:.0f} ms", f"{r.candidates_median:.0f}", f"{r.rechecked_median:.0f}",
                         int(r.rounds), int(r.steps_total), "yes" if bool(r.busy) else "no",
                         f"{r.git_sha}"[:10], speed])
    return markdown_table(["model", "env", "step (thread CPU, median)", "wall", "candidates/step",
                           "sites re-checked/step", "rounds", "env steps", "busy", "git",
                           "speed-up (scratch/incremental)"], rows,
                          ["l", "l", "r", "r", "r", "r", "r", "r", "l", "l", "r"])


@report_table("envs.env_memory")
def env_memory_table() -> str:
    """Memory over the incremental rollout: resident set (MB) at env steps 1/50/250/500, the
    process's peak (it includes the tracemalloc replay, which holds a second env), and the traced
    Python heap (tracemalloc, current / peak MB) of a replay of the same rollout."""
    df = load_result("envs/env_bench.csv")
    df = df[~df["is_aa_control"].astype(bool) & (df["mode"] == "incremental")]
    rows = []
    for r in df.sort_values(["model", "label"]).itertuples():
        traced = []
        for k in (50, 250, 500):
            cur, peak = getattr(r, f"traced_mb_{k}", None), getattr(r, f"traced_peak_mb_{k}", None)
            traced.append("—" if cur is None or (isinstance(cur, float) and np.isnan(cur))
                          else f"{float(cur):.0f} / {float(peak):.0f}")
        rows.append([f"`{r.model}`", r.label, *(_mb(getattr(r, f"rss_mb_{k}", None)) for k in (1, 50, 250, 500)),
                     _mb(r.peak_rss_mb), *traced])
    return markdown_table(["model", "label", "RSS @1", "RSS @50", "RSS @250", "RSS @500", "peak RSS",
                           "traced @50", "traced @250", "traced @500"], rows,
                          ["l", "l"] + ["r"] * 8)


@report_table("envs.encoder")
def encoder_table() -> str:
    """Scoring every candidate of one observation: batched re-encoding of each candidate graph
    (``full``, baseline) vs the diff encoder; median thread-CPU ms [IQR] and the ratio
    diff/full with its 95 % interval and verdict (interleaved rounds of one run)."""
    df = load_result("envs/encoder.csv")
    rows = []
    for r in df.sort_values(["model", "variant"]).itertuples():
        ratio = "—" if r.variant == r.baseline else f"{r.ratio:.2f}× [{r.ci_lo:.2f}, {r.ci_hi:.2f}] {r.verdict}"
        rows.append([f"`{r.model}`", r.variant, int(r.candidates), f"{r.thread_cpu_ms:.0f} ms (IQR {r.iqr_ms:.0f})",
                     ratio, int(r.rounds), "yes" if bool(r.busy) else "no", f"{r.git_sha}"[:10]])
    return markdown_table(["model", "encoder", "candidates", "time (thread CPU, median)", "time / full",
                           "rounds", "busy", "git"], rows, ["l", "l", "r", "r", "r", "r", "l", "l"])


@report_table("envs.rl_toy")
def rl_toy_table() -> str:
    """Predicted cost / original of the final graph per toy graph: the PPO policy (IQM over seeds
    with a 95 % bootstrap interval, deterministic rollouts), greedy search, best random walk."""
    from xflow.agents.evaluation import bootstrap_ci

    df = load_result("envs/rl_toy.csv")
    searches = [s for s in ("greedy",) if s in set(df["search"])] + sorted(
        s for s in set(df["search"]) if s.startswith("random"))
    rows = []
    for graph, d in df.groupby("graph", sort=True):
        ppo = d[d["search"] == "ppo"]
        mid, lo, hi = bootstrap_ci(ppo["final_cost_ratio"].to_numpy())
        cells = [f"`{graph}`", f"{fmt(mid)} [{fmt(lo)}, {fmt(hi)}]", fmt(ppo["best_cost_ratio"].min()), len(ppo)]
        for s in searches:
            r = d[d["search"] == s]
            cells.append(fmt(r["final_cost_ratio"].iloc[0]) if len(r) else "—")
        rows.append(cells)
    return markdown_table(["graph", "PPO final (IQM [95% CI])", "PPO best seen", "seeds", *searches], rows,
                          ["l", "r", "r", "r"] + ["r"] * len(searches))


@report_table("envs.rl_toy_training")
def rl_toy_training_table() -> str:
    """PPO training per seed: mean episodic return over the first and last 20 training episodes."""
    df = load_result("envs/rl_toy.csv")
    d = df[df["search"] == "ppo"].drop_duplicates("seed").sort_values("seed")
    rows = [[int(r.seed), f"`{r.train_model}`", int(r.train_steps), fmt(r.train_return_first20, 3),
             fmt(r.train_return_last20, 3)] for r in d.itertuples()]
    return markdown_table(["seed", "trained on", "steps", "return, first 20 episodes", "return, last 20 episodes"],
                          rows, ["r", "l", "r", "r", "r"])


def _eval_cells(r) -> tuple[str, str]:
    if bool(r.stochastic):
        pred = f"{float(r.predicted_ratio):.6f} [{float(r.predicted_lo):.6f}, {float(r.predicted_hi):.6f}]"
    else:
        pred = f"{float(r.predicted_ratio):.6f}"
    if r.verdict == "unchanged":
        meas = "unchanged graph"
    elif not np.isfinite(float(r.measured_speedup if r.measured_speedup is not None else np.nan)):
        meas = "—"
    else:
        meas = (f"{float(r.measured_speedup):.3f}× [{float(r.speedup_lo):.3f}, {float(r.speedup_hi):.3f}] "
                f"{'(' + r.verdict + ')' if bool(r.stochastic) else r.verdict}")
    return pred, meas


#: The default (calibrated-roofline) policy's file name: rows without a ``policy`` column are its.
DEFAULT_POLICY_NAME = "xrlflow_pretrained.pt"
#: The policy trained with the backend-aware ``ort`` reward (``rl_pretrain.py --recipe ort``).
ORT_POLICY_NAME = "xrlflow_ort.pt"


def _evaluate_rows(backend: str, own_cost: bool = True, policy: str | None = DEFAULT_POLICY_NAME):
    """Rows of ``results/rl/evaluate.csv`` measured on ``backend`` (rows written before the backend
    column are ORT's) whose searches ran under the policy's own cost model (``own_cost``) or under
    another one (``rl_evaluate.py --cost-model``; rows before that column are the policy's own), of
    one ``policy`` file (``None``: every policy)."""
    df = load_result("rl/evaluate.csv", defaults={"backend": "ort", "cost_model": None, "policy_cost_model": None,
                                                  "policy": DEFAULT_POLICY_NAME})
    df["cost_model"] = df["cost_model"].fillna("")
    df["policy_cost_model"] = df["policy_cost_model"].fillna(df["cost_model"])
    df = df[(df["backend"] == backend) & ((df["cost_model"] == df["policy_cost_model"]) == own_cost)]
    if policy is not None:
        df = df[df["policy"] == policy]
    if df.empty:
        hint = "" if own_cost else " --cost-model ort"
        hint += "" if policy in (None, DEFAULT_POLICY_NAME) else f" --policy data/policies/{policy}"
        raise FileNotFoundError(f"results/rl/evaluate.csv has no such rows measured on {backend!r}: run "
                                f"benchmarks/rl_evaluate.py --backend {backend}{hint}")
    return quoting(df)


_BACKEND_LABEL = {"ort": "ORT, 1 thread", "torch": "torch backend, CPU, 1 thread", "torch-cuda": "torch backend, CUDA"}


def _rl_evaluate(backend: str, policy: str = DEFAULT_POLICY_NAME) -> str:
    rows = []
    for r in _evaluate_rows(backend, policy=policy).itertuples():
        pred, meas = _eval_cells(r)
        rows.append([f"`{r.case}`", r.method, int(r.seeds), pred, meas, f"{float(r.search_time_s):.1f}",
                     f"{float(r.n_rewrites):g}"])
    return markdown_table(["case", "method", "seeds", "predicted cost ratio",
                           f"measured speed-up ({_BACKEND_LABEL[backend]})", "search s (median)", "rewrites"],
                          rows, ["l", "l", "r", "r", "l", "r", "r"])


def _rl_targets(backend: str, policy: str = DEFAULT_POLICY_NAME) -> str:
    rows = []
    for case, d in _evaluate_rows(backend, policy=policy).groupby("case", sort=False):
        rl, gr = d[d.method == "rl"], d[d.method == "greedy"]
        if rl.empty or gr.empty:
            continue
        rel = float(rl.predicted_ratio.iloc[0]) / float(gr.predicted_ratio.iloc[0])
        better = rel <= 0.98
        measured = rl.verdict.iloc[0] == "faster"
        rows.append([f"`{case}`", f"{float(rl.predicted_ratio.iloc[0]):.6f}", f"{float(gr.predicted_ratio.iloc[0]):.6f}",
                     f"{100 * (rel - 1):+.4f} %", "yes" if rel <= 1 + 1e-9 else "**no**", "yes" if better else "no",
                     rl.verdict.iloc[0], "yes" if better and measured else "no"])
    return markdown_table(["case", "rl predicted", "greedy predicted", "rl vs greedy (cost)", "rl never worse",
                           "rl ≥ 2 % better (predicted)", "rl measured vs original", "both"],
                          rows, ["l", "r", "r", "r", "l", "l", "l", "l"])


@report_table("envs.rl_evaluate")
def rl_evaluate_table() -> str:
    """The pretrained policy vs greedy / beam / random on held-out models and shapes
    (``benchmarks/rl_evaluate.py`` → ``results/rl/evaluate.csv``): predicted cost ratio (IQM
    [95 % bootstrap] over seeds for rl-sample and random), measured ORT speed-up vs the original
    with interval and verdict (stochastic: IQM of the per-seed speed-ups, verdict counts), search time."""
    return _rl_evaluate("ort")


@report_table("envs.rl_evaluate_torch")
def rl_evaluate_torch_table() -> str:
    """:func:`rl_evaluate_table` with the final graphs measured on the torch backend (CPU)."""
    return _rl_evaluate("torch")


@report_table("envs.rl_evaluate_ort_policy")
def rl_evaluate_ort_policy_table() -> str:
    """:func:`rl_evaluate_table` for the policy trained with the backend-aware ``ort`` reward
    (``data/policies/xrlflow_ort.pt``), every search under ``ort``; final graphs measured on ORT."""
    return _rl_evaluate("ort", ORT_POLICY_NAME)


@report_table("envs.rl_targets_ort_policy")
def rl_targets_ort_policy_table() -> str:
    """:func:`rl_targets_table` for the ``ort``-reward policy (predicted under ``ort``)."""
    return _rl_targets("ort", ORT_POLICY_NAME)


@report_table("envs.rl_evaluate_cost_models")
def rl_evaluate_cost_models_table() -> str:
    """:func:`rl_evaluate_table` for the runs whose searches (the policy's included) used another
    cost model than the one the policy was trained with (``rl_evaluate.py --cost-model``), with the
    predicted ratio under that model and RL vs greedy under it; final graphs measured on ORT."""
    df = _evaluate_rows("ort", own_cost=False, policy=None)
    rows = []
    for (case, cm), d in df.groupby(["case", "cost_model"], sort=False):
        gr = d[d.method == "greedy"]
        for r in d.itertuples():
            pred, meas = _eval_cells(r)
            vs = (f"{100 * (float(r.predicted_ratio) / float(gr.predicted_ratio.iloc[0]) - 1):+.4f} %"
                  if not gr.empty else "—")
            rows.append([f"`{case}`", f"`{cm}` (trained: `{r.policy_cost_model}`)", r.method, int(r.seeds), pred,
                         vs, meas, f"{float(r.search_time_s):.1f}", f"{float(r.n_rewrites):g}"])
    return markdown_table(["case", "cost model of the searches", "method", "seeds", "predicted cost ratio",
                           "vs greedy (predicted)", f"measured speed-up ({_BACKEND_LABEL['ort']})", "search s (median)",
                           "rewrites"], rows, ["l", "l", "l", "r", "r", "r", "l", "r", "r"])


@report_table("envs.rl_targets")
def rl_targets_table() -> str:
    """Issue 12's targets per evaluation case, from ``results/rl/evaluate.csv``: RL (arg-max) vs
    greedy, predicted (``rl / greedy - 1`` of the cost in %; never worse means ≤ 0, ≥ 2 % better
    means ≤ -2 %) and whether RL's graph is significantly faster than the original when measured."""
    return _rl_targets("ort")


@report_table("envs.rl_targets_torch")
def rl_targets_torch_table() -> str:
    """:func:`rl_targets_table` with the measured column from the torch backend (CPU)."""
    return _rl_targets("torch")


@report_table("envs.rl_pretrain")
def rl_pretrain_table() -> str:
    """Training of each committed policy per training stage (one run; ``rl_pretrain.py --resume``
    adds one) and training model (``benchmarks/rl_pretrain.py`` → ``results/rl/pretrain.csv``; rows
    without a policy are the default policy's, without a stage the first stage's): episodes, mean
    final cost ratio (under the policy's reward cost model) of the stage's first and last 5
    episodes, best."""
    df = load_result("rl/pretrain.csv", defaults={"policy": DEFAULT_POLICY_NAME, "stage": 1})
    df["stage"] = df["stage"].astype(int)
    rows = []
    for (policy, stage, model), d in df.groupby(["policy", "stage", "model"], sort=False):
        d = d.sort_values("episode")
        rows.append([f"`{policy}`", stage, f"`{model}`", len(d), fmt(d.final_cost_ratio.head(5).mean(), 4),
                     fmt(d.final_cost_ratio.tail(5).mean(), 4), fmt(d.final_cost_ratio.min(), 4)])
    return markdown_table(["policy", "stage", "training model", "episodes", "final cost ratio, first 5", "last 5",
                           "best"], rows, ["l", "r", "l", "r", "r", "r", "r"])


#: Updates the arg-max rollout must keep its final graph for the policy to count as stable.
CONVERGE_WINDOW = 5
#: Issue 12's budget for a stable policy on a squeezenet-sized model (seconds).
CONVERGE_TARGET_S = 1800.0


@report_table("envs.rl_converge")
def rl_converge_table() -> str:
    """PPO on one model (``benchmarks/rl_converge.py`` → ``results/rl/converge.csv``): the arg-max
    rollout's final predicted cost ratio after the first and last update, greedy's, the update from
    which the rollout ends at the same graph every time (:func:`~xflow.agents.evaluation.stable_from`,
    ≥ :data:`CONVERGE_WINDOW` updates) and its training time, the longest unchanged run before that
    one (a stable stretch that later broke), and the sampled training episodes'
    final ratio (IQM with a 95 % bootstrap interval over the episodes of the first and last five
    updates); the target is a stable policy within :data:`CONVERGE_TARGET_S` of training."""
    from xflow.agents.evaluation import bootstrap_ci, stable_from

    def window(part) -> str:  # IQM [95 % CI] of the final ratios of every training episode in ``part``
        eps = np.concatenate([_samples(x) for x in part.train_ratios.fillna("")]) if len(part) else np.array([])
        return fmt_ci(*bootstrap_ci(eps), digits=4, suffix="") + f" ({eps.size} ep.)" if eps.size else "—"

    df = load_result("rl/converge.csv", defaults={"cost_model": "calibrated"})
    rows = []
    for (model, cost_model, seed), d in df.groupby(["model", "cost_model", "seed"], sort=True):
        d = d.sort_values("iteration").reset_index(drop=True)
        hashes = d.eval_hash.astype(str).tolist()
        i = stable_from(hashes, window=CONVERGE_WINDOW)
        last = d.iloc[-1]
        tail = hashes[-CONVERGE_WINDOW:]
        if i is None:
            stable, status = "not stable", "not met"
        else:
            t = float(d.train_s.iloc[i])
            stable = f"update {int(d.iteration.iloc[i])} ({t:.0f} s)"
            worse = float(last.eval_final_ratio) > 1.0 + 1e-9
            status = ("met" if t <= CONVERGE_TARGET_S else "not met (too slow)") + (
                ", but ends worse than the input" if worse else "")
            if abs(float(last.eval_final_ratio) - float(last.greedy_ratio)) <= 1e-9:
                status += " (at greedy's graph)"
            elif int(last.eval_length) == 1 and abs(float(last.eval_final_ratio) - 1.0) <= 1e-12:
                status += " (stops at once: no rewrite)"
        runs = [len(list(g)) for _, g in itertools.groupby(hashes)]
        earlier = max(runs[:-1], default=0)  # the longest unchanged run before the final one
        rows.append([f"`{model}`", f"`{cost_model}`", int(seed), len(d), int(last.global_step), f"{float(last.train_s):.0f}",
                     fmt(float(d.eval_final_ratio.iloc[0]), 6), fmt(float(last.eval_final_ratio), 6),
                     str(int(last.eval_length)), fmt(float(last.greedy_ratio), 6), stable,
                     f"{len(set(tail))} / {len(tail)}", str(earlier), window(d.head(5)), window(d.tail(5)), status])
    return markdown_table(["model", "reward cost model", "seed", "updates", "env steps", "training s", "arg-max ratio, update 1", "last update",
                           "its length", "greedy", "stable from", f"distinct final graphs, last {CONVERGE_WINDOW}",
                           "longest earlier unchanged run",
                           "training episodes' ratio, first 5 updates", "last 5 updates", "stable ≤ 30 min"],
                          rows, ["l", "l", "r", "r", "r", "r", "r", "r", "r", "r", "l", "r", "r", "l", "l", "l"])


#: Row order of the ablation table (greedy is the deterministic reference).
_ABLATION_ORDER = ("gnn+dense", "graphfree+dense", "gnn+sparse", "gnn+dense lr2.5e-4", "greedy")


def _iqm_cell(values: np.ndarray, digits: int = 3, unit: str = "") -> str:
    """IQM over seeds with its 95 % bootstrap interval (:func:`fmt_ci`); a single value alone."""
    from xflow.agents.evaluation import bootstrap_ci

    if values.size == 1:
        return f"{values[0]:.{digits}f}{unit}"
    return fmt_ci(*bootstrap_ci(values), digits=digits, suffix=unit)


@report_table("envs.rl_ablation")
def rl_ablation_table() -> str:
    """Issue 12's ablations (``benchmarks/rl_ablation.py`` → ``results/envs/rl_ablation.csv``):
    per agent variant and toy graph, the final graph's predicted cost ratio and measured ORT
    speed-up (IQM over seeds with a 95 % percentile bootstrap interval) and the per-seed verdict
    counts; greedy search is the deterministic reference."""
    df = load_result("envs/rl_ablation.csv")
    rows = []
    graphs = list(dict.fromkeys(df["graph"]))
    for g in graphs:
        d = df[df["graph"] == g]
        for v in _ABLATION_ORDER:
            r = d[d["variant"] == v]
            if not len(r):
                continue
            counts = r["verdict"].value_counts()
            verdicts = ", ".join(f"{int(counts[k])} {k}" for k in ("faster", "same", "slower", "unchanged") if k in counts)
            rows.append([f"`{g.split('?')[0]}{'?…' if '?' in g else ''}`" + (" (train)" if not bool(r["held_out"].iloc[0]) else ""), v, len(r),
                         _iqm_cell(r["final_cost_ratio"].to_numpy(float)),
                         _iqm_cell(r["measured_speedup"].to_numpy(float), unit="×"), verdicts])
    return markdown_table(["graph", "agent", "seeds", "predicted cost ratio (nominal)",
                           "measured speed-up (ORT, 1 thread)", "verdicts"], rows,
                          ["l", "l", "r", "r", "r", "l"])


@report_table("envs.rl_ablation_summary")
def rl_ablation_summary_table() -> str:
    """The ablations pooled over the held-out toy graphs: per variant the IQM over (seed, graph)
    of the predicted cost ratio with its 95 % bootstrap interval, how often the agent matched or
    beat greedy's predicted cost, and the training returns (first/last 20 episodes, IQM over
    seeds; the sparse reward's return is in measured %, the dense one's in predicted %)."""
    df = load_result("envs/rl_ablation.csv")
    held = df[df["held_out"].astype(bool)]
    greedy = held[held["variant"] == "greedy"].set_index("graph")["final_cost_ratio"]
    rows = []
    for v in _ABLATION_ORDER[:-1]:
        r = held[held["variant"] == v]
        if not len(r):
            continue
        le = int((r["final_cost_ratio"].to_numpy(float) <= greedy.reindex(r["graph"]).to_numpy(float) + 1e-9).sum())
        train = df[(df["variant"] == v) & ~df["held_out"].astype(bool)]
        rows.append([v, int(r["seed"].nunique()), _iqm_cell(r["final_cost_ratio"].to_numpy(float)),
                     f"{le} / {len(r)}", _iqm_cell(train["final_cost_ratio"].to_numpy(float)),
                     _iqm_cell(train["train_return_first20"].to_numpy(float), 2),
                     _iqm_cell(train["train_return_last20"].to_numpy(float), 2),
                     _kl_entropy(train), f"{float(np.median(train['train_cpu_s'])):.0f} s"])
    return markdown_table(["agent", "seeds", "held-out predicted ratio (IQM)", "≤ greedy (held-out runs)",
                           "training graph ratio (IQM)", "return, first 20", "return, last 20",
                           "max approx. KL · entropy first → last (medians)", "training CPU (median)"], rows,
                          ["l", "r", "r", "r", "r", "r", "r", "r", "r"])


def _kl_entropy(train) -> str:
    """Whether PPO moved the policy at all: the largest per-update approximate KL and the policy
    entropy at the first and last update (medians over seeds)."""
    if "approx_kl_max" not in train:
        return "—"
    return (f"{float(np.median(train['approx_kl_max'])):.4f} · {float(np.median(train['entropy_first'])):.2f} → "
            f"{float(np.median(train['entropy_last'])):.2f}")
