"""Experiments over the rewrite rules, as ``run(config) -> records`` (notebook, sweep runner, tests).

* :func:`run` — one search baseline on one zoo model (or ONNX file): predicted cost and measured
  ORT latency (ORT_ENABLE_ALL, interleaved repeats) of the original and the result.
* :func:`cost_vs_measured` — for every one-step candidate of a model, the analytic cost model's
  predicted speed-up next to the measured one, plus their Spearman rank correlation.
* :func:`changed_nodes` — which node names a rewrite removed and added (for highlighting).
"""
from __future__ import annotations

import logging
from typing import Any

import onnx

__all__ = ["run", "cost_vs_measured", "changed_nodes", "load_for_rewrite", "spearman"]

log = logging.getLogger(__name__)


def load_for_rewrite(model: str | onnx.ModelProto, **zoo_cfg: Any) -> onnx.ModelProto:
    """A zoo model name, an ``.onnx`` path or a ModelProto, loaded and constant-folded."""
    from xflow.graphs.model import load_model

    if isinstance(model, str) and not model.endswith(".onnx"):
        from xflow.graphs import zoo

        return load_model(zoo.export(model, **zoo_cfg)).model
    return load_model(model).model


def changed_nodes(before: onnx.ModelProto, after: onnx.ModelProto) -> tuple[list[str], list[str]]:
    """``(removed, added)`` node names between two graphs (names are stable across rewrites)."""
    a = {n.name for n in before.graph.node}
    b = {n.name for n in after.graph.node}
    return sorted(a - b), sorted(b - a)


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman rank correlation (NaN when fewer than 3 points or a constant series)."""
    import numpy as np
    from scipy.stats import spearmanr

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def run(config: dict[str, Any]) -> list[dict[str, Any]]:
    """One search on one model; long-format records (one metric per row).

    Config keys: ``model`` (zoo name or path), ``method`` (greedy|beam|random), ``budget``,
    ``cost`` (analytic|calibrated), ``threads`` (1), ``repeats`` (20), ``seed`` (0), ``alpha`` (1.05).
    """
    from xflow.rewrites.cost import AnalyticCost, calibrate
    from xflow.rewrites.search import search
    from xflow.runtime import compare_latency

    cfg = {"method": "greedy", "budget": 10, "cost": "analytic", "threads": 1, "repeats": 20, "seed": 0,
           "alpha": 1.05, **config}
    model = load_for_rewrite(cfg["model"])
    cost = AnalyticCost(calibrate("cpu", intra_threads=cfg["threads"]) if cfg["cost"] == "calibrated" else "cpu")
    kw: dict[str, Any] = {"budget": cfg["budget"]}
    if cfg["method"] == "beam":
        kw["alpha"] = cfg["alpha"]
    if cfg["method"] == "random":
        kw["seed"] = cfg["seed"]
    res = search(model, cfg["method"], cost, **kw)
    base = {k: cfg[k] for k in ("model", "method", "budget", "cost", "threads", "seed")}
    recs = [{**base, "metric": "predicted_speedup", "value": res.predicted_speedup},
            {**base, "metric": "n_actions", "value": float(len(res.actions))},
            {**base, "metric": "search_time_s", "value": res.time_s}]
    if cfg["repeats"] > 0:
        interval: dict[str, Any] = {"ratio": 1.0, "ci_lo": float("nan"), "ci_hi": float("nan"), "verdict": "n/a"}
        if res.actions:
            cmp = compare_latency(res.model, model, intra_threads=cfg["threads"], repeats=cfg["repeats"])
            orig_ms, new_ms = cmp.b.median_ms, cmp.a.median_ms
            if cmp.measurement.rounds >= 2:  # interval and verdict of rewritten / original (plots, tables)
                interval = {"ratio": cmp.ratio, "ci_lo": cmp.ci[0], "ci_hi": cmp.ci[1], "verdict": cmp.verdict,
                            "noise_floor": cmp.comparison.noise_floor}
        else:
            from xflow.runtime import measure_latency

            orig_ms = new_ms = measure_latency(model, intra_threads=cfg["threads"], repeats=cfg["repeats"]).median_ms
            interval["verdict"] = "same"  # nothing was rewritten: the same graph
            interval.update(ci_lo=1.0, ci_hi=1.0)
        recs += [{**base, "metric": "original_ms", "value": orig_ms},
                 {**base, "metric": "rewritten_ms", "value": new_ms},
                 {**base, "metric": "measured_speedup", "value": orig_ms / new_ms, **interval}]
    return recs


def cost_vs_measured(model: str | onnx.ModelProto, *, max_candidates: int = 20, repeats: int = 10,
                     threads: int = 1, cost: Any = None) -> tuple[list[dict[str, Any]], float]:
    """Predicted vs measured speed-up of one-step candidates; returns ``(rows, spearman rho)``.

    At most ``max_candidates`` candidates, taken round-robin over the rules that match.

    The original, a second session of it (the A/A control) and all candidates are timed in one
    interleaved run (ORT_ENABLE_ALL); rows carry the measured speed-up's interval
    (``speedup_lo``/``speedup_hi``) and verdict.
    """
    from xflow.rewrites.candidates import candidates
    from xflow.rewrites.cost import AnalyticCost
    from xflow.runtime.latency import measure_models, stats_of

    m = load_for_rewrite(model) if isinstance(model, str) else model
    cost = cost or AnalyticCost()
    pool = candidates(m, verify=False)
    by_rule: dict[str, list] = {}
    for c in pool:
        by_rule.setdefault(c.rule, []).append(c)
    cands = []  # round-robin over rules so every rule family is represented
    while len(cands) < min(max_candidates, len(pool)):
        for group in by_rule.values():
            if group and len(cands) < max_candidates:
                cands.append(group.pop(0))
    settings = {"level": "all", "intra_threads": threads}
    variants = {"original": (m, settings)}
    variants.update({f"c{i}": (c.model, settings) for i, c in enumerate(cands)})
    meas = measure_models(variants, baseline="original", aa=repeats >= 2, warmup=2, rounds=repeats)
    c0, t0 = cost(m), stats_of(meas, "original").median_ms
    rows = []
    for i, c in enumerate(cands):
        row = {"rule": c.rule, "location": str(c.location), "predicted_speedup": c0 / cost(c.model),
               "measured_speedup": t0 / stats_of(meas, f"c{i}").median_ms}
        if meas.rounds >= 2:  # the measured speed-up's interval and verdict (for error bars)
            cmp = meas.compare(f"c{i}")
            row.update(speedup_lo=cmp.speedup_ci[0], speedup_hi=cmp.speedup_ci[1], verdict=cmp.verdict)
        rows.append(row)
    rho = spearman([r["predicted_speedup"] for r in rows], [r["measured_speedup"] for r in rows])
    return rows, rho
