"""One comparison of the searches on the evaluation models: same rules, same cost model, same budget.

For each model every method (``greedy``, ``beam``, ``taso``, ``tensat`` and ``rl`` when a checkpoint
and the agent's search are given: ``CompareConfig.rl_search``, e.g. :func:`xflow.agents.search.rl_search`,
passed in by the caller because the agents sit above the rewrites) searches over the **generated** rule set (the one set all of them can use: TENSAT's
e-graph only takes rules as data) under the analytic cost with the same time budget (and the same
expansion budget for the queue-based searches). Each output is verified against the original in
ORT; then the original, every output and an A/A control are timed in **one** interleaved run of the
measurement core (:func:`xflow.rewrites.search.measure_balanced` →
:func:`xflow.runtime.latency.measure_models`), and each output's speed-up vs the original gets its
interval and verdict (``compare``). Records go to ``results/rewrites/searches.csv``
(``benchmarks/rewrite_searches.py``); ``xflow.rewrites.report`` renders the docs table.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import onnx

from xflow.costs import Roofline
from xflow.errors import XflowError
from xflow.graphs import zoo
from xflow.graphs.model import load_model
from xflow.rewrites.generator.rule import generated_rules
from xflow.rewrites.search import measure_balanced, search
from xflow.rewrites.searches.taso import taso_search
from xflow.rewrites.searches.tensat import tensat_search
from xflow.rewrites.verify import Verifier
from xflow.results import provenance
from xflow.tables import load_result, save_result

__all__ = ["CompareConfig", "FULL", "QUICK", "compare_model", "run"]

log = logging.getLogger(__name__)


@dataclass
class CompareConfig:
    """Models (with zoo configs), methods, one budget for all, measurement rounds."""

    models: list[str]
    zoo_cfg: dict[str, dict[str, Any]] = field(default_factory=dict)
    methods: list[str] = field(default_factory=lambda: ["greedy", "beam", "taso", "tensat"])
    budget: int = 20
    time_budget_s: float = 60.0
    max_candidates: int = 200
    threads: int = 1
    repeats: int = 30
    checkpoint: str | None = None
    tensat_extract: str = "ilp"
    #: ``rl_search(model, checkpoint) -> result`` for the ``rl`` method (the agents layer's
    #: :func:`xflow.agents.search.rl_search`; passed in, never imported here).
    rl_search: Callable[[onnx.ModelProto, str], Any] | None = None


#: X-RLflow's evaluation models that the zoo has.
FULL = CompareConfig(models=["squeezenet1_1", "nasrnn", "bert_encoder", "googlenet", "inception_v3",
                             "resnext50_32x4d"], budget=20, time_budget_s=120.0)

#: ``--quick``: SqueezeNet and a small NASRNN, 20 s per search.
QUICK = CompareConfig(models=["squeezenet1_1", "nasrnn"], zoo_cfg={"nasrnn": {"hidden": 128, "seq": 3}},
                      budget=5, time_budget_s=20.0, repeats=30)


def _search(method: str, model: onnx.ModelProto, cfg: CompareConfig, rules, cost):
    if method == "taso":
        return taso_search(model, cost, rules=rules, budget=cfg.budget, time_budget_s=cfg.time_budget_s,
                           max_candidates=cfg.max_candidates)
    if method == "tensat":
        return tensat_search(model, cost, rules=rules, time_limit_s=cfg.time_budget_s,
                             extract=cfg.tensat_extract, ilp_time_s=cfg.time_budget_s)
    if method == "rl":
        if cfg.rl_search is None:
            raise XflowError("method 'rl' needs CompareConfig.rl_search (pass xflow.agents.search.rl_search)")
        return cfg.rl_search(model, cfg.checkpoint)
    return search(model, method, cost, rules=rules, budget=cfg.budget, time_budget_s=cfg.time_budget_s,
                  max_candidates=cfg.max_candidates)


def compare_model(name: str, cfg: CompareConfig) -> list[dict[str, Any]]:
    """Records for one zoo model: per method predicted and measured speed-up, search time."""
    model = zoo.load(name, **cfg.zoo_cfg.get(name, {}))
    rules = generated_rules()
    cost = Roofline("cpu", name="nominal")
    methods = list(cfg.methods) + (["rl"] if cfg.checkpoint and "rl" not in cfg.methods else [])
    outs: dict[str, Any] = {}
    rows: dict[str, dict[str, Any]] = {}
    ver = Verifier(model)
    for method in methods:
        t0 = time.perf_counter()
        try:
            res = _search(method, model, cfg, rules, cost)
        except Exception as exc:  # noqa: BLE001 - one failing method must not lose the others
            log.warning("%s on %s failed: %s", method, name, exc)
            rows[method] = {"model": name, "method": method, "error": f"{type(exc).__name__}: {exc}"}
            continue
        v = ver.check(res.model)
        stats = getattr(res, "stats", {}) or {}
        rows[method] = {"model": name, "method": method, "predicted_speedup": res.predicted_speedup,
                        "initial_cost_ms": res.initial_cost, "cost_ms": res.cost,
                        "search_time_s": time.perf_counter() - t0, "n_rewrites": len(res.actions),
                        "rules_applied": " ".join(sorted({a["rule"] for a in res.actions})),
                        "n_expanded": res.n_expanded, "verified": bool(v.ok),
                        "nodes_before": len(model.graph.node), "nodes_after": len(res.model.graph.node),
                        "tensat_stop": stats.get("stop_reason", ""), "tensat_enodes": stats.get("nodes", math.nan),
                        "tensat_iterations": stats.get("iterations", math.nan), "budget": cfg.budget,
                        "time_budget_s": cfg.time_budget_s}
        if v.ok:
            outs[method] = res.model
    settings = {"level": "all", "intra_threads": cfg.threads, "device": "cpu"}
    variants = {"original": (model, settings)}
    variants.update({m: (g, settings) for m, g in outs.items()})
    meas = measure_balanced(variants, repeats=cfg.repeats, baseline="original")
    floor = meas.noise_floor()
    for method, g in outs.items():
        c = meas.compare(method)
        rows[method].update({"original_ms": meas.median_ms("original"), "method_ms": meas.median_ms(method),
                             "measured_speedup": c.speedup, "speedup_lo": c.speedup_ci[0],
                             "speedup_hi": c.speedup_ci[1], "verdict": c.verdict, "noise_floor": floor,
                             "clock": meas.clock, "repeats": cfg.repeats, "threads": cfg.threads})
    return [rows[m] for m in methods if m in rows]


def run(cfg: CompareConfig, *, out: str | None = "rewrites/searches.csv", progress: bool = True) -> list[dict]:
    """All models of ``cfg``; saves after each model (a long run keeps what it finished)."""
    records: list[dict[str, Any]] = []
    it = cfg.models
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(cfg.models, desc="searches")
    for name in it:
        records.extend(compare_model(name, cfg))
        if out:
            save_result(records, out, threads=cfg.threads)
    return records


#: the rule set each search of the zoo check uses: the CLI's default (TENSAT's e-graph takes only
#: the generated rules; TASO's default adds the hand-written ones, variadic merges included)
ZOO_RULES = {"taso": "all", "tensat": "generated"}


def zoo_check(models: list[str] | None = None, *, methods=("taso", "tensat"), time_budget_s: float = 60.0,
              budget: int = 1000, out: str | None = "rewrites/searches_zoo.csv") -> list[dict[str, Any]]:
    """``xflow rewrite search MODEL.onnx --search METHOD`` on every zoo model within ``time_budget_s``
    (the real CLI, one subprocess per run, ``--repeats 0``: no timing): its own search time, whether
    its output verifies against the original in ORT, predicted speed-up; saved after each run.

    Rows already in ``out`` for other methods or models are kept (each row carries its own
    provenance), so ``--searches tensat`` re-runs TENSAT only and ``--models M`` only model ``M``."""
    import json
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    models = list(models or zoo.list_models())
    kept = _kept_rows(out, models, methods) if out else []
    recs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="xflow-zoo-check-") as tmp:
        for name in models:
            src = Path(tmp) / f"{name}.onnx"
            onnx.save(zoo.load(name), str(src))
            model = load_model(str(src)).model  # what the CLI searches (loaded and folded the same way)
            ver = Verifier(model)
            for method in methods:
                dst = Path(tmp) / f"{name}.{method}.onnx"
                cmd = [sys.executable, "-m", "xflow", "rewrite", "search", str(src), "--search", method,
                       "--budget", str(budget), "--time-budget-s", str(time_budget_s), "--repeats", "0",
                       "--json", "-o", str(dst)]
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True)
                wall = time.perf_counter() - t0
                rec: dict[str, Any] = {"model": name, "method": method, "rules": ZOO_RULES.get(method, ""),
                                       "time_budget_s": time_budget_s, "budget": budget, "wall_s": wall,
                                       "nodes_before": len(model.graph.node), "exit_code": proc.returncode}
                if proc.returncode != 0:
                    msg = (proc.stderr.strip().splitlines() or ["no output"])[0]
                    rec.update({"search_time_s": math.nan, "verified": False, "predicted_speedup": math.nan,
                                "nodes_after": len(model.graph.node), "detail": msg})
                else:
                    data = json.loads(proc.stdout)
                    new = load_model(str(dst)).model  # folded like the input: node counts compare like with like
                    st = data.get("tensat") or {}
                    detail = (f"{st.get('nodes')} e-nodes, {st.get('iterations')} it., {st.get('stop_reason')}; "
                              f"{st.get('extracted')}" if method == "tensat" else
                              f"{data['n_expanded']} expanded, {data['n_actions']} rewrites")
                    rec["rules_applied"] = " ".join(sorted({a["rule"] for a in data.get("actions", [])}))
                    rec.update({"search_time_s": data["time_s"], "verified": bool(ver.check(new).ok),
                                "predicted_speedup": data["predicted_speedup"], "nodes_after": len(new.graph.node),
                                "detail": detail})
                    if method == "tensat":
                        rec.update({"tensat_iterations": st.get("iterations"), "tensat_enodes": st.get("nodes"),
                                    "tensat_stop": st.get("stop_reason"), "tensat_extracted": st.get("extracted"),
                                    "tensat_ilp_status": st.get("ilp_status"),
                                    "tensat_saturation_s": st.get("saturation_s"),
                                    "tensat_extraction_s": st.get("extraction_s")})
                rec.update({k: v for k, v in provenance("cpu", None).items() if k not in rec})
                log.info("%s", rec)
                recs.append(rec)
                if out:
                    save_result(_ordered(kept + recs), out)
    return recs


def _kept_rows(out: str, models: list[str], methods) -> list[dict[str, Any]]:
    """Rows of ``out`` that this run does not redo (another method, or a model not run); empty when
    the file does not exist yet."""
    try:
        df = load_result(out)
    except FileNotFoundError:
        return []
    redo = {(m, s) for m in models for s in methods}
    rows = [r for r in df.to_dict("records") if (r["model"], r["method"]) not in redo]
    for r in rows:  # rows from before the column existed: the CLI's default rule set then
        if not isinstance(r.get("rules"), str):
            r["rules"] = ZOO_RULES.get(r["method"], "")
    return rows


def _ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by zoo model order, then method."""
    order = {m: i for i, m in enumerate(zoo.list_models())}
    return sorted(rows, key=lambda r: (order.get(r["model"], len(order)), str(r["model"]), str(r["method"])))
