"""Per-op times alone and inside the graph: why the ``ort`` model misranks NASRNN's rewrites.

``ort`` (:mod:`xflow.costs.ort_optimized`) times each op configuration of ORT's optimized graph
alone, in a one-node session (TASO's table); ``ort-context`` (:mod:`xflow.costs.ort_context`)
takes each configuration's time inside the first graph that has it, from ORT's profiler. For the
graphs of one fidelity pool (``benchmarks/cost_fidelity.py``: the same seed and count, so the same
graphs) this lists every configuration with both times, how many nodes of the pool have it, and
which rewrite made it (the rule of the first graph whose optimized graph has it).

Run (reads the cost models' tables, profiling and timing only what they lack; nothing else should
run meanwhile)::

    .venv/bin/python benchmarks/context_op_times.py [--model nasrnn] [--graphs 30] [--seed 0]

writes ``results/costs/context_ops.csv`` (a run replaces its model's rows) — the table
``costs.context_ops`` in ``docs/rl.md``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULT = "costs/context_ops.csv"


def config_rows(model: str, graphs: int, seed: int) -> list[dict]:
    """:func:`xflow.costs.ort_context.configurations` of the fidelity pool of ``model`` (each graph
    labelled by the last rule applied to reach it), as result rows."""
    from cost_fidelity import draw_graphs  # noqa: E402 - the benchmark next to this one
    from xflow.costs.ort_context import configurations
    from xflow.graphs.model_ids import resolve_graph

    pool = draw_graphs(resolve_graph(f"zoo:{model}"), graphs, seed=seed)
    labels = [p["rules"].split(";")[-1] if p["rules"] else "(original)" for p in pool]
    rows = configurations([p["graph"] for p in pool], labels)
    return [{"model": model, **{k: v for k, v in r.items() if k != "first"}, "first_rule": r["first"],
             "graphs": len(pool), "seed": seed} for r in rows]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="nasrnn")
    ap.add_argument("--graphs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from xflow.tables import save_result

    rows = config_rows(args.model, args.graphs, args.seed)
    for r in rows:
        print(f"{r['op']:<10} {r['inputs']:<40} {r['first_rule']:<22} x{r['nodes']:<4} alone {1000 * r['alone_ms']:7.1f} us"  # noqa: T201
              f"  in graph {1000 * r['context_ms']:7.1f} us  ({r['context_over_alone']:.2f}x)")
    print(f"wrote {save_result(rows, RESULT, threads=1, replace_on=('model',))}")  # noqa: T201 - benchmark script
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
