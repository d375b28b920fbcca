"""How far do the ``ort`` cost model's search decisions move when its op table is timed again?

``ort`` costs ONNX Runtime's optimized graph with a per-op table (:mod:`xflow.costs.optable`): each op
configuration is timed once, in one interleaved measurement with the other missing ones, and kept.
A search's predicted gains are differences of a few per cent between sums of such entries, so the
table's own timing noise can move them. This builds ``--runs`` fresh tables (in memory: the on-disk
table is neither read nor changed), runs greedy search under each (the settings of
``benchmarks/rl_evaluate.py``: horizon 25, 64 candidates, 60 s), then prices every run's final graph
under every table. A decision that holds up shows the same final graph in each run, and each graph
costs about the same under every table.

Run (nothing else should run meanwhile: every table is timed afresh)::

    .venv/bin/python benchmarks/optable_search_spread.py [--models resnext50_32x4d googlenet] [--runs 3]

writes ``results/costs/optable_search_spread.csv``, one row per (model, table, graph), a run
replacing its models' rows. This is the table ``costs.optable_search_spread`` in ``docs/rl.md``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULT = "costs/optable_search_spread.csv"


def spread_rows(name: str, runs: int, *, horizon: int = 25, max_candidates: int = 64,
                time_budget_s: float = 60.0) -> list[dict]:
    """Greedy under ``runs`` fresh ``ort`` tables, then every final graph priced under every table."""
    from xflow.costs.ort_optimized import OrtOptimizedCost
    from xflow.graphs.model_ids import resolve_graph
    from xflow.rewrites.search import greedy_search

    graph = resolve_graph(f"zoo:{name}")
    tables, finals = [], []
    for run in range(runs):
        t0 = time.time()
        cost = OrtOptimizedCost(persist=False)
        res = greedy_search(graph, cost, budget=horizon, time_budget_s=time_budget_s, max_candidates=max_candidates)
        tables.append(cost)
        finals.append({"graph": res.graph, "hash": res.graph.content_hash if res.actions else graph.content_hash,
                       "rules": " ".join(a["rule"] for a in res.actions), "n_rewrites": len(res.actions),
                       "seconds": time.time() - t0})
    rows = []
    for k, cost in enumerate(tables):
        base = float(cost(graph))
        for j, f in enumerate(finals):
            rows.append({"model": name, "table": k, "graph_run": j, "own": k == j,
                         "ratio": float(cost(f["graph"])) / base, "graph_hash": f["hash"], "rules": f["rules"],
                         "n_rewrites": f["n_rewrites"], "search_s": f["seconds"], "runs": runs})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the spread for each model and save its rows; returns the exit status."""
    import logging

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["resnext50_32x4d", "googlenet"])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    import torch

    from xflow.tables import save_result

    torch.set_num_threads(1)
    for name in args.models:
        rows = spread_rows(name, args.runs)
        for r in rows:
            print(f"{name} table {r['table']} graph {r['graph_run']}: x{r['ratio']:.4f} "  # noqa: T201
                  f"({r['n_rewrites']} rewrites: {r['rules']})", flush=True)
        print(f"wrote {save_result(rows, RESULT, threads=1, replace_on=('model',))}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
