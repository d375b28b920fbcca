"""How far does ``ort-context``'s fidelity move when its in-graph op table is taken again?

An ``ort-context`` table holds each op configuration's time from one profiled session of the first
graph that has it (:mod:`xflow.costs.ort_context`), so a session's placement effect (up to 10 %
between two sessions of one graph here: ``costs.working_set_sessions``) is baked into the table.
This builds ``--runs`` fresh tables (in memory: the on-disk one is neither read nor changed) for
the saved graphs of a fidelity run (``benchmarks/cost_fidelity.py``; same seed and count, hashes
checked) and reports Spearman's ρ of each against the saved measured ratios.

Run (nothing else should run meanwhile: every run profiles the pool's graphs)::

    .venv/bin/python benchmarks/context_table_spread.py [--models nasrnn squeezenet1_1] [--runs 3] [--sessions 3]

writes ``results/costs/context_spread.csv`` (a run replaces its models' rows) — the table
``costs.context_spread`` in ``docs/rl.md``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULT = "costs/context_spread.csv"


def spread_rows(name: str, runs: int, sessions: int) -> list[dict]:
    """One row per fresh table: ρ [95 % bootstrap interval] of its predictions on the saved graphs."""
    from cost_fidelity import saved_pool, spearman_ci
    from xflow.costs.ort_context import OrtContextCost

    pool, saved, seed = saved_pool(name, "ort", sessions)
    measured = saved["measured_ratio"].to_numpy(float)
    rows = []
    for run in range(runs):
        t0 = time.time()
        cm = OrtContextCost(persist=False)
        cm.prepare([p["graph"] for p in pool])
        costs = np.array([cm.cost(p["graph"], p["hash"]) for p in pool])
        rho, lo, hi = spearman_ci(costs / costs[0], measured, seed=seed)
        rows.append({"model": name, "sessions": sessions, "run": run, "spearman": rho, "spearman_lo": lo,
                     "spearman_hi": hi, "graphs_profiled": cm.profiled, "n_graphs": len(pool),
                     "seconds": time.time() - t0})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["nasrnn", "squeezenet1_1"])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sessions", type=int, default=3, help="the saved measurements to rank against")
    args = ap.parse_args(argv)
    from xflow.tables import save_result

    for name in args.models:
        rows = spread_rows(name, args.runs, args.sessions)
        for r in rows:
            print(f"{name} run {r['run']}: rho {r['spearman']:.2f} [{r['spearman_lo']:.2f}, {r['spearman_hi']:.2f}]"  # noqa: T201
                  f" ({r['graphs_profiled']} graphs profiled, {r['seconds']:.0f} s)", flush=True)
        print(f"wrote {save_result(rows, RESULT, threads=1, replace_on=('model', 'sessions'))}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
