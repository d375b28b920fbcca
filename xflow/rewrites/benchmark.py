"""End-to-end latency benchmark of the rewrite optimizers (``benchmarks/rewrite_latency.py``).

For each model, every optimizer runs once — greedy / beam / random search over a cost model,
the PPO policy when a checkpoint is given (:func:`xflow.agents.search.rl_search`), and the
``onnxsim`` / ``onnxslim`` simplifiers when installed — then, per ORT thread count, the original
and every optimizer's output are timed **together** with interleaved repeats after a warm-up,
all at ``ORT_ENABLE_ALL``: ORT's own optimizer is the baseline every rewrite must beat. Fast
models get more rounds (``min_time_s`` of samples per variant, up to 3000 rounds).

Each search method appears twice: ``<method>`` (its result as is) and ``<method>+guard``, the
"never slower" output: the measured-fastest of the original and prefixes of the method's rewrite
trajectory (:func:`xflow.rewrites.search.pick_fastest`, chosen in a separate measurement at that
thread count, so selection and reporting do not share noise). An ``A/A control`` (a second
session of the original) gives the noise floor. Every round runs the variants in a fresh random
order (:func:`xflow.rewrites.search.measure_balanced`): a fixed order and its reverse still favour
the end positions.

Headline per (model, threads, optimizer): the measured ``speedup`` of the optimized graph over the
original (paired ratio over interleaved rounds, :mod:`xflow.runtime.measure`) with its 95 % interval
``speedup_lo``/``speedup_hi``, ``verdict`` and the run's A/A ``noise_floor``, next to the cost model's
``predicted_speedup`` and the optimization time, as long-format records (:func:`run` → ``list[dict]``;
one metric per row). Cost-model fidelity (rank correlation) is measured over many candidates by
:func:`xflow.rewrites.experiments.cost_vs_measured`, not over the handful of optimizer outputs here.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import onnx

__all__ = ["BenchConfig", "Optimized", "QUICK", "FULL", "optimize_all", "run", "run_model", "simplifiers"]

log = logging.getLogger(__name__)


@dataclass
class BenchConfig:
    """What to run: models (zoo names, with per-model zoo config), optimizers and timing settings.

    Args:
        models: zoo model names (or ``.onnx`` paths).
        zoo_cfg: per-model keyword arguments for :func:`xflow.graphs.zoo.export` (e.g. a small NASRNN).
        methods: search baselines among ``greedy``, ``beam``, ``random``.
        budget: search steps (greedy/random) or expansions (beam).
        time_budget_s: wall-clock cap per search.
        cost: cost model name for the searches (:func:`xflow.rewrites.cli._cost_fn`).
        threads: ORT intra-op thread counts to time.
        repeats: interleaved timed rounds; the guard's selection uses half as many.
        checkpoint: ``agent.pt`` of a trained PPO policy (adds the ``rl`` optimizer).
        use_simplifiers: add ``onnxsim`` / ``onnxslim`` when they import.
        guard_points: trajectory prefixes the guard measures.
        min_time_s: at least this much timed time per variant: fast models get more rounds
            than ``repeats`` (up to 3000), so sub-millisecond graphs are not timed on 30 samples.
    """

    models: list[str]
    zoo_cfg: dict[str, dict[str, Any]] = field(default_factory=dict)
    methods: list[str] = field(default_factory=lambda: ["greedy", "beam", "random"])
    budget: int = 10
    time_budget_s: float = 120.0
    cost: str = "analytic"
    threads: list[int] = field(default_factory=lambda: [1, 2])
    repeats: int = 30
    checkpoint: str | None = None
    use_simplifiers: bool = True
    guard_points: int = 4
    min_time_s: float = 1.0


#: The issue's models, 1 and 2 threads.
FULL = BenchConfig(models=["bert_encoder", "inception_v3", "googlenet", "squeezenet1_1",
                           "resnext50_32x4d", "nasrnn"])

#: ``--quick`` (≤ 3 min): SqueezeNet and a small NASRNN, budget 3, 1 thread, 30 rounds.
QUICK = BenchConfig(models=["squeezenet1_1", "nasrnn"], zoo_cfg={"nasrnn": {"hidden": 128, "seq": 3}},
                    budget=3, time_budget_s=30.0, threads=[1], repeats=30, min_time_s=0.5)


@dataclass
class Optimized:
    """One optimizer's output: the model, predicted speed-up, optimization time, rules applied,
    and (search methods only) the rewrite actions the guard replays prefixes of."""

    model: onnx.ModelProto
    predicted_speedup: float
    time_s: float
    rules: list[str]
    actions: list[dict] = field(default_factory=list)


def simplifiers(model: onnx.ModelProto) -> dict[str, Optimized]:
    """``{name: Optimized}`` for the installed ONNX simplifiers (none is required; failures are logged)."""
    out: dict[str, Optimized] = {}
    try:
        import onnxsim

        t0 = time.perf_counter()
        simplified, ok = onnxsim.simplify(model)
        if ok:
            out["onnxsim"] = Optimized(simplified, math.nan, time.perf_counter() - t0, [])
    except Exception as exc:  # noqa: BLE001 - optional peer: absent or failing is not an error here
        log.info("onnxsim unavailable: %s", exc)
    try:
        import onnxslim

        t0 = time.perf_counter()
        slim = onnxslim.slim(model)
        out["onnxslim"] = Optimized(slim, math.nan, time.perf_counter() - t0, [])
    except Exception as exc:  # noqa: BLE001
        log.info("onnxslim unavailable: %s", exc)
    return out


def optimize_all(original: onnx.ModelProto, cfg: BenchConfig) -> dict[str, Optimized]:
    """Run every configured optimizer once on ``original`` (searches, rl, simplifiers)."""
    from xflow.rewrites.cli import _cost_fn
    from xflow.rewrites.search import search

    outs: dict[str, Optimized] = {}
    cost = _cost_fn(cfg.cost, cfg.threads[0])
    for method in cfg.methods:
        kwargs: dict[str, Any] = {"budget": cfg.budget, "time_budget_s": cfg.time_budget_s}
        res = search(original, method, cost, **kwargs)
        outs[method] = Optimized(res.model, res.predicted_speedup, res.time_s,
                                 [a["rule"] for a in res.actions], list(res.actions))
    if cfg.checkpoint:
        from xflow.agents.search import rl_search

        res = rl_search(original, cfg.checkpoint)
        outs["rl"] = Optimized(res.model, res.predicted_speedup, res.time_s,
                               [a["rule"] for a in res.actions], list(res.actions))
    if cfg.use_simplifiers:
        outs.update(simplifiers(original))
    return outs


def _rounds(latency_ms: float, cfg: BenchConfig) -> int:
    """Timed rounds: ``cfg.repeats``, or more so each variant gets ``cfg.min_time_s`` of samples."""
    return int(min(3000, max(cfg.repeats, math.ceil(cfg.min_time_s * 1e3 / max(latency_ms, 1e-3)))))


def _guard(original: onnx.ModelProto, opt: Optimized, threads: int, cfg: BenchConfig, rounds: int) -> Optimized:
    """The measured-fastest of the original and trajectory prefixes of ``opt`` (never slower)."""
    from xflow.rewrites.search import pick_fastest, trajectory_models

    points = trajectory_models(original, opt.actions, max_points=cfg.guard_points) if opt.actions else []
    if not points:
        return Optimized(original, 1.0, opt.time_s, [])
    t0 = time.perf_counter()
    best, info = pick_fastest(original, [m for _, m in points], intra_threads=threads,
                              repeats=max(5, rounds // 2))
    n = points[info["kept_index"]][0] if info["kept"] == "rewritten" else 0
    predicted = 1.0 if n == 0 else opt.predicted_speedup if n == len(opt.actions) else math.nan
    return Optimized(best, predicted, opt.time_s + time.perf_counter() - t0, opt.rules[:n])


def run_model(name: str, cfg: BenchConfig,
              on_row: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Optimize and time one model; returns long-format records (``on_row`` sees one summary per variant)."""
    from xflow.rewrites.experiments import load_for_rewrite
    from xflow.rewrites.search import measure_balanced

    original = load_for_rewrite(name, **cfg.zoo_cfg.get(name, {}))
    outs = optimize_all(original, cfg)
    searched = [k for k in outs if k in cfg.methods or k == "rl"]
    records: list[dict[str, Any]] = []
    for t in cfg.threads:
        settings = {"level": "all", "intra_threads": t}
        pilot = measure_balanced({"original": (original, settings)}, warmup=3, repeats=3, aa=False)
        rounds = _rounds(pilot.median_ms("original", "wall"), cfg)
        variants_out = dict(outs)
        for k in searched:
            variants_out[f"{k}+guard"] = _guard(original, outs[k], t, cfg, rounds)
        variants = {"original": (original, settings)}
        variants.update({k: (v.model, settings) for k, v in variants_out.items()})
        m = measure_balanced(variants, warmup=3, repeats=rounds, baseline="original")
        variants_out["A/A control"] = Optimized(original, 1.0, 0.0, [])
        base = m.median_ms("original")
        cond = m.conditions()
        for k, o in variants_out.items():
            c = m.compare("original~aa" if k == "A/A control" else k, "original")
            common = {"model": name, "optimizer": k, "threads": t, "budget": cfg.budget, "cost": cfg.cost,
                      "rounds": m.rounds}
            row = {**common, "speedup": c.speedup, "speedup_lo": c.speedup_ci[0], "speedup_hi": c.speedup_ci[1],
                   "verdict": c.verdict, "noise_floor": c.noise_floor, "original_median_ms": base,
                   "optimized_median_ms": m.median_ms(c.a), "optimized_iqr_ms": m.iqr_ms(c.a),
                   "predicted_speedup": o.predicted_speedup, "optimize_time_s": o.time_s,
                   "n_rewrites": float(len(o.rules)), "rules": o.rules}
            if on_row is not None:
                on_row(row)
            stats = {"speedup_lo": row["speedup_lo"], "speedup_hi": row["speedup_hi"], "verdict": c.verdict,
                     "noise_floor": c.noise_floor, **cond}
            records += [{**common, **stats, "metric": metric, "value": float(row[metric])} for metric in
                        ("speedup", "original_median_ms", "optimized_median_ms", "optimized_iqr_ms",
                         "predicted_speedup", "optimize_time_s", "n_rewrites")]
    return records


def run(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Sweep-runner task: ``config`` holds :class:`BenchConfig` fields (``models`` required)."""
    cfg = BenchConfig(**config)
    out: list[dict[str, Any]] = []
    for name in cfg.models:
        out += run_model(name, cfg)
    return out
