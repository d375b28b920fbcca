"""PPO (X-RLflow) on the toy graphs vs greedy and random search, in predicted cost.

Trains the PPO agent on one toy graph (default ``builder:inception_like``) for each seed, then
rolls out the deterministic policy on every toy graph of the table next to greedy search and the
best of three random walks, all on the environment's cost model (``nominal`` by default:
deterministic, so the table depends only on the code and the seeds). Records the final and best
predicted cost / original per (seed, graph, search), and the first/last training returns.

    .venv/bin/python benchmarks/rl_toy.py --quick      # 1 seed, 256 steps (smoke run)
    .venv/bin/python benchmarks/rl_toy.py              # seeds 1-3, 1024 steps (≈ 1 min CPU per seed)

Writes ``results/envs/rl_toy.csv`` (docs table ``envs.rl_toy``, :mod:`xflow.envs.report`).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile

GRAPHS = ["builder:inception_like", "builder:matmul_chain", "builder:qkv_matmuls", "builder:sibling_convs",
          "builder:split_concat", "builder:transpose_chain"]


def _rules(episode: dict) -> str:
    """The rules an episode applied, comma-separated (stop steps have none)."""
    return ",".join(r for r in episode["rules"] if r)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 seed, 256 steps")
    p.add_argument("--seeds", nargs="+", type=int, help="training seeds (default 1 2 3; quick 1)")
    p.add_argument("--steps", type=int, help="PPO timesteps per seed (default 1024; quick 256)")
    p.add_argument("--train-model", default="builder:inception_like")
    p.add_argument("--cost-model", default="nominal", help="a name of xflow.costs.COST_MODELS")
    p.add_argument("--random-walks", type=int, default=3)
    args = p.parse_args(argv)

    import numpy as np

    from xflow.agents.evaluation import evaluate_agent, greedy_episode, random_episode
    from xflow.agents.ppo import make_env, profile_args, train
    from xflow.tables import save_result

    seeds = args.seeds or ([1] if args.quick else [1, 2, 3])
    steps = args.steps or (256 if args.quick else 1024)
    common = {"horizon": 10, "max_candidates": 32, "hidden": 32, "gnn_layers": 2, "cost_model": args.cost_model}
    rows = []
    base_done = set()
    with tempfile.TemporaryDirectory() as runs:
        for seed in seeds:
            a = profile_args("quick", model=args.train_model, seed=seed, total_timesteps=steps, num_steps=128,
                             runs_dir=runs, save_model=False, **common)
            res = train(a)
            _, ret = res.curve()
            first, last = (float(np.mean(ret[:20])), float(np.mean(ret[-20:]))) if ret.size else (np.nan, np.nan)
            for g in GRAPHS:
                env = make_env(a, model=g)
                r = evaluate_agent(res.agent, env, seed=0)[0]
                rows.append({"graph": g, "search": "ppo", "seed": seed, "final_cost_ratio": r["final_cost_ratio"],
                             "best_cost_ratio": r["best_cost_ratio"], "steps": r["episodic_length"],
                             "rules": _rules(r), "train_model": args.train_model, "train_steps": steps,
                             "train_return_first20": first, "train_return_last20": last, **common})
                if g in base_done:
                    continue
                base_done.add(g)
                gr = greedy_episode(env, seed=0)
                rows.append({"graph": g, "search": "greedy", "seed": 0, "final_cost_ratio": gr["final_cost_ratio"],
                             "best_cost_ratio": gr["best_cost_ratio"], "steps": gr["episodic_length"],
                             "rules": _rules(gr), **common})
                walks = [random_episode(env, seed=s) for s in range(args.random_walks)]
                best = min(walks, key=lambda w: w["final_cost_ratio"])
                rows.append({"graph": g, "search": f"random (best of {args.random_walks})", "seed": 0,
                             "final_cost_ratio": best["final_cost_ratio"], "best_cost_ratio": best["best_cost_ratio"],
                             "steps": best["episodic_length"], "rules": _rules(best), **common})
            out = save_result(rows, "envs/rl_toy.csv", threads=1)  # every finished seed is kept
            print(json.dumps({"seed": seed, "train_return_first20": first, "train_return_last20": last}), flush=True)
    print("wrote", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
