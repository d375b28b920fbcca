"""Step time of the graph-rewrite environment: candidate generation + featurization of one step.

One sample is ``env.step(0)`` from a freshly reset environment with empty candidate and feature
caches, so it pays for everything a step does on a graph it has not seen: build the chosen
candidate, enumerate and hash every one-step rewrite of it, featurize it and its candidates, and
cost the transition (nominal roofline: no measurement inside the step). The reset before each
sample is not timed. Timing goes through :func:`xflow.runtime.measure` (thread CPU time decides:
the step runs on one thread); the A/A control gives the noise floor of the run.

The script only uses APIs that exist before and after the graph-core change (issue 18), so the same
file measures both checkouts; ``--label`` names the rows of one run::

    PYTHONPATH=/path/to/old/checkout python benchmarks/env_step.py --label before
    PYTHONPATH=$PWD                  python benchmarks/env_step.py --label after
    python benchmarks/env_step.py --quick --label after      # squeezenet1_1, 3 rounds

Writes ``results/envs/env_step.csv`` (rows of other labels/models are kept; a rerun replaces its
own): one row per variant with the median thread-CPU and wall ms per step, IQR, contention, the
run's load, and the per-round thread-CPU samples (``samples_ms``) from which the docs table
(``envs.env_step``, :mod:`xflow.envs.report`) derives the before/after ratio and its interval.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="squeezenet1_1 and 3 rounds")
    p.add_argument("--model", default=None, help="model id (default zoo:inception_v3; quick zoo:squeezenet1_1)")
    p.add_argument("--rounds", type=int, default=None, help="timed steps (default 5, quick 3)")
    p.add_argument("--max-candidates", type=int, default=500)
    p.add_argument("--label", required=True, help="which checkout the rows come from (e.g. before / after)")
    p.add_argument("--out", default="envs/env_step.csv", help="result file under results/")
    args = p.parse_args(argv)

    import gymnasium as gym
    import pandas as pd

    import xflow.envs  # noqa: F401 - registers the env
    from xflow.envs import ENV_ID
    from xflow.results import provenance
    from xflow.runtime.measure import Variant, measure
    from xflow.tables import results_root, save_result

    model = args.model or ("zoo:squeezenet1_1" if args.quick else "zoo:inception_v3")
    rounds = args.rounds or (3 if args.quick else 5)
    env = gym.make(ENV_ID, model=model, max_candidates=args.max_candidates, horizon=100,
                   reward="cost", cost_model="nominal", verify=False).unwrapped

    def fresh() -> None:
        env._cand_cache.clear()
        env._feat_cache.clear()
        env.reset()

    fresh()
    n_candidates = len(env.candidates)
    m = measure({"step": Variant(lambda: env.step(0), threads=1, before=fresh)},
                warmup=1, rounds=rounds, inner=1, progress=True, desc="env step")
    n_after = len(env.candidates)
    rows = m.records(model=model, label=args.label, env_id=ENV_ID, max_candidates=args.max_candidates,
                     candidates_before=n_candidates, candidates_after=n_after)
    for r in rows:
        r["samples_ms"] = ";".join(f"{1e3 * t:.3f}" for t in m.times(r["variant"], "thread"))
        r.update({k: v for k, v in provenance("cpu", 1).items() if k not in r})
    new = pd.DataFrame(rows)
    path = results_root() / args.out
    if path.exists():
        old = pd.read_csv(path)
        old = old[~((old["label"] == args.label) & (old["model"] == model))]
        new = pd.concat([old, new], ignore_index=True)
    out = save_result(new, args.out)
    s = {r["variant"]: {"thread_cpu_ms": r["thread_cpu_ms"], "wall_ms": r["wall_ms"], "iqr_ms": r["iqr_ms"]}
         for r in rows}
    print(json.dumps({"model": model, "label": args.label, "candidates": [n_candidates, n_after],
                      "conditions": m.conditions(), "noise_floor": m.noise_floor(), "variants": s,
                      "wrote": str(Path(out))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
