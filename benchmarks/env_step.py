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
    python benchmarks/env_step.py --encoder-only           # candidate scoring: re-encode vs diff encoder

Writes ``results/envs/env_bench.csv`` (rows of other model/label/mode combinations are kept),
from which ``make report`` builds the ``envs.env_bench`` table of ``docs/rl.md``. The older
``results/envs/env_step.csv`` (first step after reset, before/after the graph-core change) is
not rewritten by this script. ``--encoder`` / ``--encoder-only`` time embedding every candidate of
one observation (after 3 random steps) two ways — re-encoding each candidate graph in one batch
(``full``, the baseline) and the diff encoder (``diff``: current graph once, changed
neighbourhoods per layer) — with an untrained 3-layer GATEncoder (hidden 64) under torch's one
thread, into ``results/envs/encoder.csv`` (table ``envs.encoder``).
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
    p.add_argument("--encoder", action="store_true", help="also time candidate scoring (full vs diff encoder)")
    p.add_argument("--encoder-only", action="store_true", help="only time candidate scoring")
    p.add_argument("--encoder-rounds", type=int, default=None, help="rounds of the encoder timing (default 15, quick 5)")
    args = p.parse_args(argv)

    from xflow.envs.bench import env_bench
    from xflow.envs.cli import env_bench_records, save_env_bench

    model = args.model or ("zoo:squeezenet1_1" if args.quick else "zoo:inception_v3")
    rounds = args.rounds or (20 if args.quick else 250)
    traced = (not args.quick) if args.tracemalloc is None else args.tracemalloc
    rows, out = [], {}
    if args.encoder or args.encoder_only:
        out["encoder"] = encoder_bench(model, args.encoder_rounds or (5 if args.quick else 15), args.label)
        if args.encoder_only:
            print(json.dumps({"model": model, **out}))
            return 0
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


def encoder_bench(model: str, rounds: int, label: str) -> dict:
    """Time scoring every candidate of one observation: batched re-encoding vs the diff encoder."""
    import random

    import torch

    from xflow.envs.cli import save_env_bench
    from xflow.envs.features import EDGE_DIM, NODE_DIM
    from xflow.envs.rewrite import RewriteEnv
    from xflow.nn.batching import batch_graphs
    from xflow.nn.diff_encoder import encode_candidates, encode_with_layers
    from xflow.nn.gat_encoder import GATEncoder
    from xflow.runtime.measure import Variant, measure

    torch.set_num_threads(1)
    torch.manual_seed(0)
    enc = GATEncoder(NODE_DIM, EDGE_DIM, 64, 64, num_layers=3).eval()
    env = RewriteEnv(model, max_candidates=500, horizon=10, cost_model="nominal")
    obs, _ = env.reset()
    rng = random.Random(0)
    for _ in range(3):
        obs, *_ = env.step(rng.randrange(len(env.candidates)))
    cg = obs["candidates"]
    parts = [cg.parts(i) for i in range(len(cg))]  # the env's diff descriptions, built once

    def full():
        with torch.no_grad():
            b = batch_graphs([p[0] for p in parts])
            enc(b.x, b.edge_index, b.edge_attr, b.batch)

    def diff():
        with torch.no_grad():
            _, layers = encode_with_layers(enc, obs["graph"])
            encode_candidates(enc, layers, parts)

    m = measure({"full": Variant(full, threads=1), "diff": Variant(diff, threads=1)}, baseline="full",
                warmup=2, rounds=rounds, inner=1, progress=True, desc="candidate scoring")
    rows = m.records(model=model, label=label, mode="encoder", candidates=len(parts), steps_total=0)
    save_env_bench(rows, "envs/encoder.csv")
    return {"candidates": len(parts), "diff_vs_full": m.compare("diff", "full").format(), **m.summary()}


if __name__ == "__main__":
    sys.exit(main())
