"""Does PPO train to a stable policy on one squeezenet-sized model within 30 minutes? (issue 12)

PPO with the pretrained policy's settings (profile ``xrlflow-budget``, horizon 25, the calibrated
roofline's dense reward) on **one** model, for a wall-clock training budget of one core. After every
PPO update the current policy's arg-max rollout on the same model is recorded (its final graph
hash, predicted cost ratio, length and rules), outside the budget. A policy counts as *stable* from
the first update after which its arg-max rollout ends at the same graph in every later update, for
at least ``--window`` updates up to the end; ``xflow.envs.report`` reads the table from
``results/rl/converge.csv`` (one row per update), with greedy search's ratio as the reference.

    PYTHONPATH=. .venv/bin/python benchmarks/rl_converge.py [--model zoo:squeezenet1_1] [--budget-s 1500]
    PYTHONPATH=. .venv/bin/python benchmarks/rl_converge.py --quick   # a 2-update smoke run, not saved
    PYTHONPATH=. .venv/bin/python benchmarks/rl_converge.py --model zoo:resnext_toy --cost-model ort

``--cost-model`` sets the reward's cost model (default: the calibrated roofline); greedy's reference
runs under the same one. Each (model, seed, cost model) run replaces its own rows of the file and
keeps the others'.

Seeds can run side by side, one core each (``--seed 2 &``).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    """Train with an evaluation rollout after every update; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="zoo:squeezenet1_1")
    ap.add_argument("--budget-s", type=float, default=1500.0, help="training time budget (seconds of wall time)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--horizon", type=int, default=25)
    ap.add_argument("--profile", default="xrlflow-budget", help="a PPO profile of xflow.agents.ppo.PROFILES")
    ap.add_argument("--cost-model", default="calibrated",
                    help="the reward's cost model (e.g. ort, the backend-aware one); greedy uses it too")
    ap.add_argument("--quick", action="store_true", help="two updates of 32 steps, printed, not saved")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    from xflow.agents.evaluation import evaluate_agent, greedy_episode
    from xflow.agents.ppo import make_env, profile_args, train
    from xflow.tables import save_result

    num_steps = 32 if a.quick else 128
    args = profile_args(a.profile, model=a.model, seed=a.seed, horizon=a.horizon, cost_model=a.cost_model,
                        max_candidates=64, total_timesteps=2 * num_steps if a.quick else 10_000_000,
                        num_steps=num_steps, time_budget_s=a.budget_s, exp_name="converge",
                        runs_dir=str(Path("/tmp") / "xflow_converge_runs"))
    eval_env = make_env(args)
    greedy = greedy_episode(eval_env, seed=0)
    rows: list[dict] = []
    t0, c0 = time.time(), time.thread_time()
    spent = {"eval_s": 0.0, "eval_cpu": 0.0}

    def on_iteration(iteration: int, global_step: int, agent) -> None:
        t, c = time.time(), time.thread_time()
        agent.eval()
        ep = evaluate_agent(agent, eval_env, episodes=1, deterministic=True, seed=0)[0]
        agent.train()
        rows.append({"model": a.model, "iteration": iteration, "global_step": global_step,
                     "train_s": round(t - t0 - spent["eval_s"], 2),
                     "train_cpu_s": round(c - c0 - spent["eval_cpu"], 2),
                     "eval_final_ratio": round(float(ep["final_cost_ratio"]), 7),
                     "eval_best_ratio": round(float(ep["best_cost_ratio"]), 7),
                     "eval_length": int(ep["episodic_length"]), "eval_hash": eval_env.hash[:16],
                     "eval_rules": ";".join(r or "stop" for r in ep["rules"]),
                     "greedy_ratio": round(float(greedy["final_cost_ratio"]), 7),
                     "profile": a.profile, "horizon": a.horizon, "seed": a.seed, "budget_s": a.budget_s,
                     "cost_model": a.cost_model,
                     "load_1min": round(os.getloadavg()[0], 2)})
        spent["eval_s"] += time.time() - t
        spent["eval_cpu"] += time.thread_time() - c
        logging.info("update %d: arg-max rollout ends at %.6f after %d steps (greedy %.6f)", iteration,
                     ep["final_cost_ratio"], ep["episodic_length"], greedy["final_cost_ratio"])

    res = train(args, on_iteration=on_iteration)
    eval_env.close()
    episodes = [{"model": a.model, "episode": i, "global_step": e["global_step"],
                 "final_ratio": round(float(e["final_cost"]) / float(e["initial_cost"]), 7)}
                for i, e in enumerate(res.episodes)]
    for r in rows:  # the sampled training episodes that ended in each update, for the learning curve
        prev = r["global_step"] - num_steps
        done = [e["final_ratio"] for e in episodes if prev < e["global_step"] <= r["global_step"]]
        r["train_episodes"] = len(done)
        r["train_mean_ratio"] = round(sum(done) / len(done), 7) if done else None
        r["train_ratios"] = ";".join(f"{x:.7f}" for x in done)
    if a.quick:
        for r in rows:
            print(r)  # noqa: T201
        return 0
    from xflow.results import provenance

    # other (model, seed) runs stay, each with its own provenance; this one's earlier run is replaced
    # (save_result locks the read-modify-write: runs of other seeds may finish at once)
    out = save_result([{**provenance("cpu", 1), **r} for r in rows], "rl/converge.csv", threads=1,
                      replace_on=("model", "seed", "cost_model"), defaults={"cost_model": "calibrated"})
    print(f"wrote {out}: {len(rows)} updates, {rows[-1]['train_s'] if rows else 0:.0f} s of training")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
