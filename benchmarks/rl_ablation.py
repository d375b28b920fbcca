"""Issue 12's ablations of X-RLflow's agent: GNN vs graph-free encoder, dense vs sparse reward.

Agents trained with PPO on one toy graph for ``--seeds`` seeds (X-RLflow's settings scaled to the
toy budget: horizon 10, 32 candidates, 32 wide; profile ``xrlflow-budget`` = X-RLflow's with a 10x
learning rate, and one variant with X-RLflow's own 2.5e-4), then rolled out (arg-max) on the
training graph and on held-out toy graphs:

=======================  ==================================  ====================================
variant                  encoder                             reward / settings
=======================  ==================================  ====================================
``gnn+dense``            GATv2, 2 message-passing steps      dense: per-step ``nominal`` cost delta
``graphfree+dense``      the same with 0 steps: each node's  dense, the same
                         features, mean/max pooled (a bag
                         of operators, no connectivity)
``gnn+sparse``           GATv2, 2 steps                      sparse: the measured ORT latency
                                                             improvement at episode end only
``gnn+dense lr2.5e-4``   GATv2, 2 steps                      dense; X-RLflow's learning rate
=======================  ==================================  ====================================

Reported per (variant, seed, graph): the final graph's predicted cost ratio (``nominal``, the
dense reward's model) and its measured ORT speed-up over the original (level ``all``, 1 thread,
thread CPU time): every distinct final graph of one toy graph is timed in one interleaved run of
the measurement core with an A/A control, after all training is done (nothing else running). The
table (``envs.rl_ablation``, ``docs/rl.md``) takes the IQM over seeds with a 95 % percentile
bootstrap interval.

Training units run through the sweep runner (:func:`xflow.sweep.run_sweep`: Ray, one CPU each,
cached and resumable; two at once on this 2-core machine, so the sparse reward's in-training
latencies are measured next to another training job). Its latencies go to a cache of this
benchmark's own (under the sweep cache), so no latency of an unrelated, possibly busy run enters
its training signal.

    .venv/bin/python benchmarks/rl_ablation.py            # 5 seeds x 1024 steps (≈ 27 min on 2 cores)
    .venv/bin/python benchmarks/rl_ablation.py --quick    # 1 seed, 128 steps, results to /tmp

Writes ``results/envs/rl_ablation.csv``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

#: The agents compared: name -> (PPO profile, GAT message-passing steps, reward).
VARIANTS = {"gnn+dense": ("xrlflow-budget", 2, "cost"), "graphfree+dense": ("xrlflow-budget", 0, "cost"),
            "gnn+sparse": ("xrlflow-budget", 2, "measured"), "gnn+dense lr2.5e-4": ("xrlflow", 2, "cost")}
TRAIN_GRAPH = "builder:inception_like"
#: Evaluation graphs: the training graph, then held-out ones (the last is the lookahead case of docs/rl.md).
EVAL_GRAPHS = (TRAIN_GRAPH, "builder:matmul_chain", "builder:qkv_matmuls", "builder:split_concat",
               "builder:transpose_chain",
               "builder:sibling_convs?kernels=(3,1,1)&out_channels=(4,4,4)&size=4&channels=4")
#: The toy-budget settings shared by every variant and by the evaluation environments.
COMMON = {"horizon": 10, "max_candidates": 32, "hidden": 32, "cost_model": "nominal"}


def _eval_env(graph: str):
    from xflow.agents.ppo import make_env, profile_args

    return make_env(profile_args("xrlflow", model=graph, reward="cost", **COMMON))


def train_unit(config: dict) -> list[dict]:
    """One sweep unit: train ``config['variant']`` with ``config['seed']``, roll out on every
    evaluation graph; one record per graph (with the rollout's actions, to rebuild its final graph)."""
    import time

    import numpy as np
    import torch

    from xflow.agents.evaluation import evaluate_agent
    from xflow.agents.ppo import profile_args, train

    os.environ["XFLOW_CACHE"] = config["latency_cache"]  # the sparse reward's latencies: this benchmark's own
    torch.set_num_threads(1)
    profile, layers, reward = VARIANTS[config["variant"]]
    with tempfile.TemporaryDirectory() as runs:
        a = profile_args(profile, model=TRAIN_GRAPH, seed=config["seed"], total_timesteps=config["steps"],
                         num_steps=128, runs_dir=runs, save_model=False, gnn_layers=layers, reward=reward,
                         measure_every=0, **COMMON)
        t0, c0 = time.time(), time.process_time()
        res = train(a)
        wall, cpu = time.time() - t0, time.process_time() - c0
    _, ret = res.curve()
    kl = [r["value"] for r in res.scalars if r["tag"] == "losses/approx_kl"]
    ent = [r["value"] for r in res.scalars if r["tag"] == "losses/entropy"]
    base = {"profile": profile, "learning_rate": a.learning_rate, "gnn_layers": layers, "reward": reward,
            "train_steps": config["steps"], "train_episodes": int(ret.size),
            "train_return_first20": float(np.mean(ret[:20])), "train_return_last20": float(np.mean(ret[-20:])),
            "approx_kl_max": float(max(kl)), "entropy_first": float(ent[0]), "entropy_last": float(ent[-1]),
            "train_wall_s": round(wall, 1), "train_cpu_s": round(cpu, 1)}
    rows = []
    for g in EVAL_GRAPHS:
        env = _eval_env(g)
        r = evaluate_agent(res.agent, env, seed=0)[0]
        rows.append({**base, "graph": g, "held_out": g != TRAIN_GRAPH, "final_cost_ratio": r["final_cost_ratio"],
                     "best_cost_ratio": r["best_cost_ratio"], "steps": r["episodic_length"],
                     "rules": ",".join(x for x in r["rules"] if x), "actions": json.dumps(list(r["state"].actions))})
    return rows


def _final_graph(graph: str, actions: list[int]):
    """Replay a rollout's actions in a fresh evaluation env; returns ``(final Graph, cost ratio)``."""
    from xflow.graphs.ir import Graph

    env = _eval_env(graph)
    _, info = env.reset(seed=0)
    for act in actions:
        _, _, term, trunc, info = env.step(int(act))
        if term or trunc:
            break
    return Graph.of(env.model), info["cost"] / env.initial_cost


def _measure(graph_id: str, finals: dict[str, object], rounds: int, max_seconds: float) -> dict[str, dict]:
    """Measured speed-up of every distinct final graph of ``graph_id`` over the original (one run)."""
    from xflow.agents.policy_eval import measure_finals
    from xflow.graphs.model_ids import resolve_graph
    from xflow.runtime.measure import CONDITIONS

    orig = resolve_graph(graph_id)
    per, info = measure_finals(orig.model, orig.content_hash, {h: g.model for h, g in finals.items()},
                               rounds=rounds, max_seconds=max_seconds)
    cond = {k: info[k] for k in CONDITIONS if k in info}  # the measurement core's list of run conditions
    return {h: {**v, **cond} for h, v in per.items()}


def main(argv: list[str] | None = None) -> int:
    """Train every (variant, seed) through the sweep runner, roll out, measure; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 seed, 128 steps, results to /tmp")
    p.add_argument("--seeds", nargs="+", type=int, help="training seeds (default 1-5; quick 1)")
    p.add_argument("--steps", type=int, help="PPO timesteps per agent (default 1024; quick 128)")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--rounds", type=int, default=20, help="measurement rounds per toy graph")
    p.add_argument("--backend", choices=("ray", "local"), default="ray")
    args = p.parse_args(argv)
    seeds = args.seeds or ([1] if args.quick else [1, 2, 3, 4, 5])
    steps = args.steps or (128 if args.quick else 1024)
    if args.quick:
        os.environ["XFLOW_RESULTS"] = tempfile.mkdtemp(prefix="xflow-ablation-results-")

    from xflow import paths
    from xflow.agents.evaluation import greedy_episode
    from xflow.sweep import grid, run_sweep
    from xflow.tables import save_result

    latency_cache = str(paths.cache_dir("sweeps", "rl_ablation", "latency"))
    configs = grid(variant=args.variants, seed=seeds, steps=[steps], latency_cache=[latency_cache])
    sweep = run_sweep(train_unit, configs, name="rl_ablation", backend=args.backend, desc="ablation units")
    if sweep.failures:
        for h, tb in sweep.failures.items():
            print(f"failed unit {h}: {tb.strip().splitlines()[-1]}", file=sys.stderr)  # noqa: T201
        return 1
    runs = [dict(r) for r in sweep.records]
    for g in EVAL_GRAPHS:  # the greedy reference, deterministic
        env = _eval_env(g)
        gr = greedy_episode(env, seed=0)
        runs.append({"variant": "greedy", "seed": 0, "graph": g, "held_out": g != TRAIN_GRAPH,
                     "final_cost_ratio": gr["final_cost_ratio"], "best_cost_ratio": gr["best_cost_ratio"],
                     "steps": gr["episodic_length"], "rules": ",".join(r for r in gr["rules"] if r),
                     "actions": json.dumps(list(gr["state"].actions))})
    rows = []
    for g in EVAL_GRAPHS:
        finals, keys = {}, []
        for r in (r for r in runs if r["graph"] == g):
            fg, ratio = _final_graph(g, json.loads(r["actions"]))
            if abs(ratio - r["final_cost_ratio"]) > 1e-9:
                raise RuntimeError(f"replaying {r['variant']} seed {r['seed']} on {g} gives cost ratio {ratio}, "
                                   f"the rollout had {r['final_cost_ratio']}: the environment is not deterministic")
            finals[fg.content_hash] = fg
            keys.append((r, fg.content_hash))
        meas = _measure(g, finals, args.rounds, 30.0)
        for r, h in keys:
            rows.append({**r, "final_hash": h, **meas[h], **COMMON, "train_graph": TRAIN_GRAPH})
    out = save_result(rows, "envs/rl_ablation.csv", threads=1)
    print("wrote", out)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
