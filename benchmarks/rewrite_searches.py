"""The searches X-RLflow compares against on the evaluation models: greedy, beam, TASO, TENSAT (+ rl).

Same rules (the generated rule set), same cost model (analytic roofline), same budget. Per model and
method: predicted speed-up, search time, verification, and the measured speed-up vs the original with
its interval and verdict (measurement core, one interleaved run per model with an A/A control).
One implementation: :mod:`xflow.rewrites.searches.compare`. Writes ``results/rewrites/searches.csv``,
which ``make report`` turns into the table in ``docs/rewrites.md`` (``rewrites.searches``).

    .venv/bin/python benchmarks/rewrite_searches.py --quick     # squeezenet1_1 + small nasrnn, 20 s per search
    .venv/bin/python benchmarks/rewrite_searches.py             # six evaluation models, 120 s per search (long)
    .venv/bin/python benchmarks/rewrite_searches.py --checkpoint runs/RUN/agent.pt   # adds the RL agent
    .venv/bin/python benchmarks/rewrite_searches.py --zoo-check  # taso + tensat on every zoo model, 60 s each
    .venv/bin/python benchmarks/rewrite_searches.py --zoo-check --searches tensat  # re-run TENSAT only (keeps TASO's rows)
"""
from __future__ import annotations

import argparse
import dataclasses
import sys


def main(argv: list[str] | None = None) -> int:
    from xflow.rewrites.searches.compare import FULL, QUICK, run

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="squeezenet1_1 + small nasrnn, 20 s per search")
    ap.add_argument("--models", nargs="+", help="zoo models")
    ap.add_argument("--methods", nargs="+", help="default: greedy beam taso tensat")
    ap.add_argument("--budget", type=int, help="expansions (greedy/beam/taso)")
    ap.add_argument("--time-budget-s", type=float, help="per-search time budget (all methods)")
    ap.add_argument("--repeats", type=int, help="interleaved timed rounds")
    ap.add_argument("--checkpoint", help="agent.pt of a trained PPO policy: adds rl")
    ap.add_argument("--no-write", action="store_true", help="do not write results/rewrites/searches.csv")
    ap.add_argument("--zoo-check", action="store_true",
                    help="instead: taso and tensat on every zoo model within the time budget (default 60 s), "
                         "outputs verified -> results/rewrites/searches_zoo.csv")
    ap.add_argument("--searches", nargs="+", choices=["taso", "tensat"], default=None,
                    help="--zoo-check: only these searches (the other searches' rows in the CSV are kept)")
    a = ap.parse_args(argv)
    if a.searches and not a.zoo_check:
        ap.error("--searches goes with --zoo-check (the comparison takes --methods)")
    if a.zoo_check:
        from xflow.rewrites.searches.compare import zoo_check

        for r in zoo_check(a.models, methods=tuple(a.searches or ("taso", "tensat")),
                           time_budget_s=a.time_budget_s or 60.0, budget=a.budget or 1000,
                           out=None if a.no_write else "rewrites/searches_zoo.csv"):
            print(f"{r['model']:<20} {r['method']:<7} {r['search_time_s']:7.1f} s  verified={r['verified']}  "
                  f"predicted {r['predicted_speedup']:.3f}x  {r['detail']}")
        return 0
    cfg = QUICK if a.quick else FULL
    over = {k: v for k, v in {"models": a.models, "methods": a.methods, "budget": a.budget,
                              "time_budget_s": a.time_budget_s, "repeats": a.repeats,
                              "checkpoint": a.checkpoint}.items() if v is not None}
    if a.checkpoint:
        from xflow.agents.search import rl_search  # torch + PyG: only when the agent runs

        over["rl_search"] = rl_search
    cfg = dataclasses.replace(cfg, **over)
    recs = run(cfg, out=None if a.no_write else "rewrites/searches.csv")
    for r in recs:
        if "measured_speedup" in r:
            print(f"{r['model']:<16} {r['method']:<7} predicted {r['predicted_speedup']:.3f}x  measured "
                  f"{r['measured_speedup']:.2f}x [{r['speedup_lo']:.2f}, {r['speedup_hi']:.2f}] {r['verdict']}  "
                  f"search {r['search_time_s']:.1f} s")
        else:
            print(f"{r['model']:<16} {r['method']:<7} {r.get('error', 'not verified')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
