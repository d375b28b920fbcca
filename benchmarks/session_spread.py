"""Is a measured rewrite effect the rewrite, or the session? Several ORT sessions of each graph, interleaved.

The cost-fidelity run (``benchmarks/cost_fidelity.py``) times every graph in one session against one
session of the original plus one A/A session. If sessions of the *same* graph differed (memory
placement, prepacking), that would pass for a rewrite's effect. This times ``--sessions`` sessions of
the original and as many of one rewritten graph in one interleaved run of the measurement core
(ORT level ``all``, 1 thread, thread CPU time), each against the first session of the original.

    .venv/bin/python benchmarks/session_spread.py [--model nasrnn] [--rule concat_matmul_add]

Writes ``results/costs/session_spread.csv`` (table ``costs.session_spread`` in docs/rl.md).
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Measure and save; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="nasrnn", help="zoo model")
    p.add_argument("--rule", default="concat_matmul_add", help="the rule whose first candidate is timed")
    p.add_argument("--sessions", type=int, default=3)
    p.add_argument("--rounds", type=int, default=30)
    a = p.parse_args(argv)

    from xflow.graphs.model_ids import resolve_graph
    from xflow.rewrites.candidates import candidates
    from xflow.runtime.latency import measure_models
    from xflow.tables import save_result

    g = resolve_graph(f"zoo:{a.model}")
    found = [c for c in candidates(g, max_candidates=200) if c.rule == a.rule]
    if not found:
        print(f"error: rule {a.rule} has no candidate on {a.model}; pick another --rule", file=sys.stderr)  # noqa: T201
        return 2
    st = {"level": "all", "intra_threads": 1}
    v = {f"original #{i}": (g.model, st) for i in range(a.sessions)}
    v.update({f"{a.rule} #{i}": (found[0].graph.model, st) for i in range(a.sessions)})
    m = measure_models(v, baseline="original #0", aa=False, warmup=3, rounds=a.rounds)
    rows = m.records(model=a.model, rule=a.rule, location=str(found[0].location))
    out = save_result(rows, "costs/session_spread.csv", threads=1)
    print("wrote", out)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
