"""Cost-model fidelity: rank correlation of predicted vs measured latency over rewritten graphs.

Per evaluation model, random rewrite sequences of varying length (a random tree: each new graph is
one random verified rewrite of a random graph already drawn, so lengths range from 1 to several)
give ``--graphs`` distinct candidate graphs plus the original. Each graph's cost is predicted by
every cost model of ``--cost-models`` (as a ratio to the original's cost) and its latency is
measured on ``--backend`` (``ort``: ONNX Runtime, level ``all``; ``torch``: the generated PyTorch
module on the CPU; 1 intra-op thread either way) through the measurement core: graphs in
chunks of ``--chunk``, each chunk in one interleaved run together with the original (the baseline,
with its A/A control), thread CPU time deciding; the measured value of a graph is its time ratio to
the original in its chunk, with the core's interval and verdict. The fidelity of a cost model is
Spearman's ρ between predicted and measured ratios, with a percentile bootstrap interval over the
graphs.

Run (each finished model is saved at once; rows of other models in the file are kept)::

    .venv/bin/python benchmarks/cost_fidelity.py [--quick] [--backend torch] [--models squeezenet1_1 nasrnn ...]

``--rescore`` measures nothing: it re-draws the graphs of the rows already saved for each model
(same seed and count; the graph hashes must match the saved ones), predicts them with
``--cost-models`` and saves those models' rows with the saved measured columns (their
``measured_git_sha`` and ``measured_timestamp`` say when they were measured); rows of the other
cost models stay::

    .venv/bin/python benchmarks/cost_fidelity.py --rescore --cost-models ort-context --sessions 3 [--models ...]

writes ``results/costs/fidelity.csv`` (one row per backend, graph and cost model; a run replaces
only its own (model, backend, sessions) rows) — the tables ``costs.fidelity`` (ORT) and
``costs.fidelity_torch`` in ``docs/rl.md`` (``make report``).
"""
from __future__ import annotations

import argparse
import gc
import logging
import random
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xflow.costs.spearman import spearman_ci  # noqa: E402 - after the path; re-exported for the other scripts

#: The evaluation models (zoo ids with overrides). BERT-base and ViT-Base widths with 5 layers: at
#: their 2-layer zoo defaults the rule set reaches only 3 distinct rewritten graphs (a Q/K/V merge per
#: layer), fewer than the 30 a rank correlation needs; 5 layers give 31 (and stay under 4 GB).
MODELS = ["squeezenet1_1", "inception_v3", "resnext50_32x4d", "nasrnn", "bert_base?layers=5",
          "vit_encoder?layers=5"]
#: Cost models compared per backend: the rooflines, and the backend's own models (the graph that
#: backend runs: ORT's optimized graph with the one-node or the in-graph op table, or the torch
#: backend's lowered kernels).
COST_MODELS = {"ort": ["nominal", "calibrated", "ort", "ort-context"], "torch": ["nominal", "calibrated", "torch"]}
#: Columns a re-scored row takes from the measured rows it re-predicts.
MEASURED_COLUMNS = ("graph", "hash", "length", "rules", "measured_ratio", "measured_lo", "measured_hi", "verdict",
                    "measured_ms", "chunk", "clock", "n_graphs", "rounds", "warmup", "seed", "threads", "level",
                    "busy", "foreign_cpu")
BACKENDS = tuple(COST_MODELS)
RESULT = "costs/fidelity.csv"

log = logging.getLogger("cost_fidelity")


def release_memory() -> None:
    """:func:`xflow.costs.ort_optimized.release_heap` (garbage collection + ``malloc_trim``)."""
    from xflow.costs.ort_optimized import release_heap

    release_heap()


def draw_graphs(graph, n: int, *, seed: int, max_attempts: int | None = None) -> list[dict]:
    """``n`` distinct graphs reached by random verified rewrites of ``graph`` (plus ``graph``).

    A random tree: pick a graph already drawn, enumerate its one-step candidates (cached), keep a
    random unseen one. Returns ``[{graph, hash, length, rules}]``, the original first.
    """
    from xflow.rewrites import get_rule
    from xflow.rewrites.candidates import candidates

    rng = random.Random(seed)
    pool = [{"graph": graph, "hash": graph.content_hash, "length": 0, "rules": ""}]
    seen = {pool[0]["hash"]}
    # per parent only (hash, rule, location): candidate graphs hold new weights (merged matrices)
    cands: dict[str, list[tuple[str, str, object]]] = {}
    attempts, max_attempts = 0, max_attempts or 8 * n
    while len(pool) < n + 1 and attempts < max_attempts:
        attempts += 1
        parent = rng.choice(pool)
        if parent["hash"] not in cands:
            cands[parent["hash"]] = [(c.hash, c.rule, c.location)
                                     for c in candidates(parent["graph"], max_candidates=200)]
            for p in pool:  # Graph.const caches its arrays per graph clone (copies: ~the weights each)
                p["graph"].__dict__.get("_const", {}).clear()
            release_memory()
        fresh = [c for c in cands[parent["hash"]] if c[0] not in seen]
        if not fresh:
            continue
        h, rule, loc = rng.choice(fresh)
        seen.add(h)
        pool.append({"graph": get_rule(rule).apply(parent["graph"], loc), "hash": h, "length": parent["length"] + 1,
                     "rules": (parent["rules"] + ";" if parent["rules"] else "") + rule})
    return pool


def measure_graphs(pool: list[dict], *, chunk: int, rounds: int, warmup: int, seed: int,
                   max_seconds: float | None = None, backend: str = "ort", sessions: int = 1) -> list[dict]:
    """Time ratio of every graph to the original (``pool[0]``) on ``backend``, chunk by chunk,
    interleaved (:func:`xflow.runtime.latency.measure_on_backend`)."""
    from xflow.costs.ort_optimized import transient_proto
    from xflow.runtime.latency import measure_on_backend

    base = pool[0]
    out = [dict(ratio=1.0, lo=1.0, hi=1.0, verdict="same", median_ms=float("nan"), chunk=-1, clock="",
                rounds=0) for _ in pool]
    rest = list(range(1, len(pool)))
    for k, start in enumerate(range(0, len(rest), chunk)):
        idx = rest[start:start + chunk]
        # sessions built per chunk and dropped after it: each holds a full copy of the weights
        variants = {"g0": transient_proto(base["graph"]),
                    **{f"g{i}": transient_proto(pool[i]["graph"]) for i in idx}}
        m = measure_on_backend(variants, backend, baseline="g0", threads=1, warmup=warmup, rounds=rounds,
                               seed=seed + k, max_seconds=max_seconds, sessions=sessions)
        base_ms = m.median_ms("g0")
        conditions = m.conditions()
        cond = {key: conditions[key] for key in ("busy", "foreign_cpu", "load_before", "load_after")}
        if out[0]["chunk"] == -1:
            out[0].update(median_ms=base_ms, chunk=k, clock=m.clock, rounds=m.rounds, **cond)
        for i in idx:
            c = m.compare(f"g{i}", "g0")
            out[i].update(ratio=c.ratio, lo=c.ci[0], hi=c.ci[1], verdict=c.verdict, median_ms=m.median_ms(f"g{i}"),
                          chunk=k, clock=m.clock, noise_floor=c.noise_floor, rounds=m.rounds, **cond)
        del variants, m
        release_memory()
    return out


def run_model(name: str, args) -> list[dict]:
    """Draw, predict and measure the graphs of one zoo model; returns the result rows."""
    from xflow.graphs.model_ids import resolve_graph

    t0 = time.time()
    graph = resolve_graph(f"zoo:{name}")  # name may carry overrides: bert_base?layers=6
    pool = draw_graphs(graph, args.graphs, seed=args.seed)
    t_draw = time.time() - t0
    log.info("%s: %d graphs drawn in %.0f s", name, len(pool) - 1, t_draw)
    preds = predict(pool, args.cost_models)
    meas = measure_graphs(pool, chunk=args.chunk, rounds=args.rounds, warmup=args.warmup, seed=args.seed,
                          max_seconds=args.max_seconds, backend=args.backend, sessions=args.sessions)
    measured = np.array([m["ratio"] for m in meas])
    rows = []
    for cm_name in args.cost_models:
        rho, lo, hi = spearman_ci(np.array(preds[cm_name]), measured, seed=args.seed)
        log.info("%s %s: Spearman %.2f [%.2f, %.2f]", name, cm_name, rho, lo, hi)
        for i, (p, m) in enumerate(zip(pool, meas)):
            rows.append({"model": name, "backend": args.backend, "sessions": args.sessions, "cost_model": cm_name,
                         "graph": i, "hash": p["hash"][:16],
                         "length": p["length"], "rules": p["rules"], "predicted_ratio": preds[cm_name][i],
                         "measured_ratio": m["ratio"], "measured_lo": m["lo"], "measured_hi": m["hi"],
                         "verdict": m["verdict"], "measured_ms": m["median_ms"], "chunk": m["chunk"],
                         "clock": m["clock"], "spearman": rho, "spearman_lo": lo, "spearman_hi": hi,
                         "n_graphs": len(pool), "rounds": m["rounds"], "warmup": args.warmup,
                         "seed": args.seed, "threads": 1,
                         "level": "all" if args.backend == "ort" else "",
                         "busy": m.get("busy"), "foreign_cpu": m.get("foreign_cpu"),
                         "seconds_total": time.time() - t0,
                         "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    return rows


def predict(pool: list[dict], cost_models: list[str]) -> dict[str, list[float]]:
    """Every cost model's predicted cost ratio of each graph of ``pool`` to the original (``pool[0]``);
    models with a table fill it for the whole pool first, in pool order."""
    from xflow.costs import make_cost_model

    preds: dict[str, list[float]] = {}
    for cm_name in cost_models:
        cm = make_cost_model(cm_name)
        if hasattr(cm, "prepare"):
            cm.prepare([p["graph"] for p in pool])  # every op configuration in one run (ort: interleaved)
            release_memory()
        c0 = cm.cost(pool[0]["graph"], pool[0]["hash"])
        preds[cm_name] = [cm.cost(p["graph"], p["hash"]) / c0 for p in pool]
    return preds


def saved_pool(name: str, backend: str, sessions: int):
    """The graphs of the saved rows of ``name`` (``backend``, ``sessions``), re-drawn with their seed
    and count and checked against the saved hashes, the saved rows of one cost model (graph order)
    and the seed; exits with the reason when there are no such rows or the graphs differ."""
    from xflow.graphs.model_ids import resolve_graph
    from xflow.tables import load_result

    df = load_result(RESULT, defaults={"backend": "ort", "sessions": 1})
    df = df[(df["model"] == name) & (df["backend"] == backend) & (df["sessions"].astype(int) == sessions)]
    if df.empty:
        raise SystemExit(f"{RESULT} has no rows of {name} on {backend} with {sessions} sessions to re-score: "
                         "run benchmarks/cost_fidelity.py first")
    saved = df[df["cost_model"] == df["cost_model"].iloc[0]].sort_values("graph")
    seed = int(saved["seed"].iloc[0])
    pool = draw_graphs(resolve_graph(f"zoo:{name}"), len(saved) - 1, seed=seed)
    if [p["hash"][:16] for p in pool] != list(saved["hash"]):
        raise SystemExit(f"{name}: the re-drawn graphs differ from the saved ones (the rule set or the hashing "
                         "changed since they were measured): re-measure instead of re-scoring")
    return pool, saved, seed


def _measured(rec: dict, column: str):
    """``rec``'s provenance ``column`` of its measurement: its own, or, for a row that was itself
    re-scored, the one it carried over (``measured_<column>``)."""
    carried = rec.get(f"measured_{column}")
    return carried if isinstance(carried, str) and carried else rec.get(column)


def rescore_model(name: str, args) -> list[dict]:
    """Re-predict the saved graphs of ``name`` (``args.backend``, ``args.sessions``) with
    ``args.cost_models``; returns rows carrying the saved measured columns."""
    t0 = time.time()
    pool, saved, seed = saved_pool(name, args.backend, args.sessions)
    preds = predict(pool, args.cost_models)
    measured = saved["measured_ratio"].to_numpy(float)
    rows = []
    for cm_name in args.cost_models:
        rho, lo, hi = spearman_ci(np.array(preds[cm_name]), measured, seed=seed)
        log.info("%s %s: Spearman %.2f [%.2f, %.2f] (re-scored)", name, cm_name, rho, lo, hi)
        for i, rec in enumerate(saved.to_dict("records")):
            row = {"model": name, "backend": args.backend, "sessions": args.sessions, "cost_model": cm_name,
                   **{c: rec.get(c) for c in MEASURED_COLUMNS},
                   "predicted_ratio": preds[cm_name][i], "spearman": rho, "spearman_lo": lo, "spearman_hi": hi,
                   "seconds_total": time.time() - t0,
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   **{f"measured_{c}": _measured(rec, c) for c in ("git_sha", "timestamp")}}
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="30 graphs, <= 15 rounds or 20 s per chunk (default: 40 graphs, <= 30 rounds or 60 s)")
    p.add_argument("--models", nargs="+", default=MODELS, help="zoo models (default: the evaluation models)")
    p.add_argument("--backend", choices=BACKENDS, default="ort", help="where the graphs are measured")
    p.add_argument("--sessions", type=int, default=1,
                   help="independent sessions per graph, taken in turn round by round (the original's and "
                        "the A/A control's too), so that a session's placement effect is not read as the "
                        "rewrite's; runs with other session counts are kept")
    p.add_argument("--cost-models", nargs="+", default=None,
                   help="default: the rooflines and the backend's own model (%s)" % COST_MODELS)
    p.add_argument("--graphs", type=int, default=None, help="candidate graphs per model (>= 30)")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--max-seconds", type=float, default=None, help="stop a chunk's rounds after this (>= 2 rounds)")
    p.add_argument("--chunk", type=int, default=8, help="graphs per interleaved measurement (memory)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rescore", action="store_true",
                   help="measure nothing: re-predict the saved graphs with --cost-models (module docstring)")
    args = p.parse_args(argv)
    args.cost_models = args.cost_models or COST_MODELS[args.backend]
    args.graphs = args.graphs or (30 if args.quick else 40)
    args.rounds = args.rounds or (15 if args.quick else 30)
    args.max_seconds = args.max_seconds or (20.0 if args.quick else 60.0)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from xflow.tables import save_result

    for name in args.models:
        if args.rescore:
            rows = rescore_model(name, args)
            path = save_result(rows, RESULT, threads=1, replace_on=("model", "backend", "sessions", "cost_model"),
                               defaults={"backend": "ort", "sessions": 1})
            print(f"{name} [{args.backend}, re-scored {', '.join(args.cost_models)}]: saved {len(rows)} rows to {path}")  # noqa: T201
            continue
        rows = run_model(name, args)
        # other (model, backend) rows stay; rows written before the backend column are ORT's
        path = save_result(rows, RESULT, threads=1, replace_on=("model", "backend", "sessions"),
                           defaults={"backend": "ort", "sessions": 1})
        print(f"{name} [{args.backend}]: saved {len(rows)} rows to {path}")  # noqa: T201 - benchmark script
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
