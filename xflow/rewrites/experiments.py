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
        if cfg["repeats"] < 2:
            raise ValueError(f"repeats must be 0 or >= 2, got {cfg['repeats']}")
        if res.actions:
            cmp = compare_latency(res.model, model, intra_threads=cfg["threads"], repeats=cfg["repeats"])
            c = cmp.comparison
            stats = {"speedup_lo": c.speedup_ci[0], "speedup_hi": c.speedup_ci[1], "verdict": c.verdict,
                     "noise_floor": c.noise_floor, **cmp.measurement.conditions()}
            recs += [{**base, **stats, "metric": "original_ms", "value": cmp.b.median_ms},
                     {**base, **stats, "metric": "rewritten_ms", "value": cmp.a.median_ms},
                     {**base, **stats, "metric": "measured_speedup", "value": c.speedup}]
        else:
            from xflow.runtime import measure_latency

            ms = measure_latency(model, intra_threads=cfg["threads"], repeats=cfg["repeats"]).median_ms
            same = {"speedup_lo": 1.0, "speedup_hi": 1.0, "verdict": "same", "noise_floor": 0.0}
            recs += [{**base, **same, "metric": "original_ms", "value": ms},
                     {**base, **same, "metric": "rewritten_ms", "value": ms},
                     {**base, **same, "metric": "measured_speedup", "value": 1.0}]
    return recs


def cost_vs_measured(model: str | onnx.ModelProto, *, max_candidates: int = 20, repeats: int = 10,
                     threads: int = 1, cost: Any = None) -> tuple[list[dict[str, Any]], float]:
    """Predicted vs measured speed-up of one-step candidates; returns ``(rows, spearman rho)``.

    At most ``max_candidates`` candidates, taken round-robin over the rules that match.

    The original, all candidates and an A/A control are timed in one interleaved run
    (ORT_ENABLE_ALL, :func:`xflow.runtime.latency.measure_models`); every row carries the measured
    speed-up's interval and verdict. ``repeats`` >= 2.
    """
    from xflow.rewrites.candidates import candidates
    from xflow.rewrites.cost import AnalyticCost
    from xflow.runtime.latency import measure_models

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
    meas = measure_models(variants, baseline="original", warmup=2, rounds=repeats)
    c0 = cost(m)
    rows = []
    for i, c in enumerate(cands):
        cmp = meas.compare(f"c{i}")
        rows.append({"rule": c.rule, "location": str(c.location), "predicted_speedup": c0 / cost(c.model),
                     "measured_speedup": cmp.speedup, "speedup_lo": cmp.speedup_ci[0],
                     "speedup_hi": cmp.speedup_ci[1], "verdict": cmp.verdict,
                     "noise_floor": cmp.noise_floor})
    rho = spearman([r["predicted_speedup"] for r in rows], [r["measured_speedup"] for r in rows])
    return rows, rho
