"""Step time and memory of the graph-rewrite environment: the one-command benchmark.

Runs :func:`xflow.envs.bench.env_bench` (what ``xflow rl env-bench`` runs): seeded random
rollouts on the model, one sample = one ``env.step`` (build the chosen candidate, hash and cost it,
move the candidate set incrementally, featurize incrementally, describe the candidates by their
local differences), timed by :func:`xflow.runtime.measure` on thread CPU time with its A/A
control; memory (RSS, and with ``--tracemalloc`` the traced heap of a replay) at env steps
1/50/250/500. With ``--from-scratch`` it also times the same rollout with the candidate set and
features rebuilt every step (the non-incremental reference of the same code).

    python benchmarks/env_step.py                          # inception_v3, 250 rounds (~500 env steps), tracemalloc
    python benchmarks/env_step.py --quick                  # squeezenet1_1, 20 rounds
    python benchmarks/env_step.py --from-scratch --rounds 10

Writes ``results/envs/env_bench.csv`` (rows of other model/label/mode combinations are kept),
from which ``make report`` builds the ``envs.env_bench`` table of ``docs/rl.md``. The older
``results/envs/env_step.csv`` (first step after reset, before/after the graph-core change) is
not rewritten by this script.
"""
from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="squeezenet1_1 and 20 rounds, no tracemalloc")
    p.add_argument("--model", default=None, help="model id (default zoo:inception_v3; quick zoo:squeezenet1_1)")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds (default 250, quick 20)")
    p.add_argument("--max-candidates", type=int, default=500)
    p.add_argument("--from-scratch", action="store_true", help="also time the from-scratch reference")
    p.add_argument("--scratch-rounds", type=int, default=10, help="rounds of the from-scratch reference")
    p.add_argument("--tracemalloc", action=argparse.BooleanOptionalAction, default=None,
                   help="replay under tracemalloc for the traced heap (default: on unless --quick)")
    p.add_argument("--label", default="bench", help="label of the result rows")
    args = p.parse_args(argv)

    from xflow.envs.bench import env_bench
    from xflow.envs.cli import env_bench_records, save_env_bench

    model = args.model or ("zoo:squeezenet1_1" if args.quick else "zoo:inception_v3")
    rounds = args.rounds or (20 if args.quick else 250)
    traced = (not args.quick) if args.tracemalloc is None else args.tracemalloc
    rows, out = [], {}
    res = env_bench(model, steps=rounds, max_candidates=args.max_candidates, tracemalloc=traced, progress=True)
    rows += env_bench_records(res, model=model, label=args.label, mode="incremental")
    out["incremental"] = res["measurement"].summary()["variants"]["step"]
    out["memory"] = res["memory"]
    if args.from_scratch:
        ref = env_bench(model, steps=args.scratch_rounds, max_candidates=args.max_candidates,
                        incremental=False, progress=True)
        rows += env_bench_records(ref, model=model, label=args.label, mode="from-scratch")
        out["from-scratch"] = ref["measurement"].summary()["variants"]["step"]
    wrote = save_env_bench(rows)
    print(json.dumps({"model": model, "rounds": rounds, **out, "wrote": wrote}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
