"""Train the committed pretrained rewrite policy (``data/policies/xrlflow_pretrained.pt``).

PPO with X-RLflow's public settings except the learning rate (profile ``xrlflow-budget`` of
:data:`xflow.agents.ppo.PROFILES`: 2.5e-3, 10x X-RLflow's, which in a budget of a few dozen updates
leaves the policy unchanged, see ``envs.rl_ablation``) and the horizon (25 instead of 50, to fit
more episodes into the budget), on a training set of small and
medium graphs whose episodes alternate; stops after the PPO iteration that ends past
``--budget-s`` seconds of one core. Writes next to the checkpoint its training record
``<name>.json`` (config, git sha, seed, training set, wall/CPU time) and curve ``<name>.curve.csv``
(one row per training episode: model, step, return, final cost ratio).

    PYTHONPATH=. .venv/bin/python benchmarks/rl_pretrain.py [--budget-s 1500] [--quick]
    PYTHONPATH=. .venv/bin/python benchmarks/rl_pretrain.py --recipe ort   # -> data/policies/xrlflow_ort.pt
    PYTHONPATH=. .venv/bin/python benchmarks/rl_pretrain.py --recipe ort --resume --budget-s 2400

``--resume`` continues the recipe's committed checkpoint (its weights; Adam's moments start fresh)
with the next seed, appends to its curve (episodes and steps numbered on) and keeps the earlier
record under ``resumed_from``; ``total_wall_s`` and ``total_episodes`` sum the stages.

``--recipe`` picks one of :data:`RECIPES`: ``calibrated`` (the default policy: the calibrated
roofline reward, :data:`TRAIN_MODELS`) or ``ort`` (the backend-aware reward of ONNX Runtime's
optimized graph with the measured op table, ``cost_model="ort"``, and :data:`TRAIN_MODELS` plus
``zoo:resnext_toy``, a small ResNeXt-style net, so that the grouped-conv rewrite ``merge_group_convs``
has sites in training). The held-out evaluation models (``benchmarks/rl_evaluate.py``) are in
neither training set. Each recipe's curve rows are kept apart in ``results/rl/pretrain.csv`` by the
``policy`` column.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from xflow.paths import repo_root
from xflow.results import git_sha
from xflow.safeio import atomic_output, atomic_write_json

#: The training set: small/medium CNNs, an RNN cell, attention blocks, inception-style builders.
TRAIN_MODELS = ("zoo:squeezenet1_1", "zoo:nasrnn", "zoo:inception_toy", "builder:inception_like",
                "zoo:bert_encoder")
#: Where the committed policy lives (``xflow rl optimize`` loads it by default).
POLICY = "data/policies/xrlflow_pretrained.pt"
#: ``name -> (training models, reward cost model, committed checkpoint)``.
RECIPES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "calibrated": (TRAIN_MODELS, "calibrated", POLICY),
    "ort": (TRAIN_MODELS + ("zoo:resnext_toy",), "ort", "data/policies/xrlflow_ort.pt"),
}


def stage_ends(record: dict) -> list[int]:
    """Cumulative episode counts at the end of each training stage, oldest first (one stage per
    run; ``--resume`` runs nest the earlier record under ``resumed_from``)."""
    counts = []
    while record:
        counts.append(int(record["episodes"]))
        record = record.get("resumed_from")
    return np.cumsum(counts[::-1]).tolist()


def read_curve(path: Path) -> list[dict]:
    """The rows of a ``<name>.curve.csv`` (for ``results/rl/pretrain.csv``), labelled by policy file
    and by training stage (1 = the first run; from the record beside it, when there is one)."""
    policy = path.name.removesuffix(".curve.csv") + ".pt"
    record = path.with_name(policy).with_suffix(".json")
    ends = stage_ends(json.loads(record.read_text())) if record.exists() else []
    with open(path, newline="") as f:
        return [{"policy": policy, "stage": 1 + sum(int(r["episode"]) >= e for e in ends[:-1]),
                 "episode": int(r["episode"]), "model": r["model"], "global_step": int(r["global_step"]),
                 "episodic_return": float(r["episodic_return"]), "episodic_length": int(r["episodic_length"]),
                 "final_cost_ratio": float(r["final_cost_ratio"])} for r in csv.DictReader(f)]


#: The columns of a ``<name>.curve.csv``.
CURVE_FIELDS = ("episode", "model", "global_step", "episodic_return", "episodic_length", "final_cost_ratio")


def curve_rows(before: list[dict], episodes: list[dict]) -> list[dict]:
    """The curve after a training stage: the earlier stages' rows, then ``episodes`` (of
    :func:`xflow.agents.ppo.train`) numbered on from them (episode index and global step)."""
    ep0 = before[-1]["episode"] + 1 if before else 0
    step0 = before[-1]["global_step"] if before else 0
    rows = [{k: r[k] for k in CURVE_FIELDS} for r in before]
    for i, e in enumerate(episodes):
        rows.append({"episode": ep0 + i, "model": e["model"], "global_step": step0 + e["global_step"],
                     "episodic_return": round(float(e["episodic_return"]), 5),
                     "episodic_length": e["episodic_length"],
                     "final_cost_ratio": round(float(e["final_cost"]) / float(e["initial_cost"]), 6)})
    return rows


def _previous_stage(checkpoint: Path) -> dict:
    """What ``--resume`` continues: the committed checkpoint's record, curve rows and SHA-256."""
    record = checkpoint.with_suffix(".json")
    if not checkpoint.exists() or not record.exists():
        raise SystemExit(f"--resume: {checkpoint} or its record {record.name} is missing; "
                         "train it first without --resume")
    sha = Path(f"{checkpoint}.sha256").read_text().split()[0]
    return {"record": json.loads(record.read_text()), "curve": read_curve(checkpoint.with_suffix(".curve.csv")),
            "sha256": sha}


def _total(previous: dict | None, key: str) -> float:
    """``key`` summed over the earlier stages (0 without ``--resume``)."""
    if previous is None:
        return 0.0
    rec = previous["record"]
    return float(rec.get(f"total_{key}", rec[key]))


def _save_curve(checkpoint: Path) -> None:
    """Replace this policy's rows of ``results/rl/pretrain.csv`` by its curve (other policies' stay)."""
    from xflow.tables import save_result

    save_result(read_curve(checkpoint.with_suffix(".curve.csv")), "rl/pretrain.csv", threads=1,
                replace_on=("policy",), defaults={"policy": Path(POLICY).name, "stage": 1})


def main(argv: list[str] | None = None) -> int:
    """Train, then copy the checkpoint and write its training record; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-s", type=float, default=1500.0, help="training time budget (seconds)")
    ap.add_argument("--seed", type=int, default=None,
                    help="training seed (default 1; with --resume, the previous stage's seed + 1)")
    ap.add_argument("--horizon", type=int, default=25)
    ap.add_argument("--profile", default="xrlflow-budget", help="a PPO profile of xflow.agents.ppo.PROFILES")
    ap.add_argument("--quick", action="store_true", help="a 2-iteration smoke run to /tmp (not committed)")
    ap.add_argument("--recipe", choices=list(RECIPES), default="calibrated",
                    help="training set and reward cost model (see RECIPES)")
    ap.add_argument("--out", default=None, help="checkpoint path (default: the recipe's committed one)")
    ap.add_argument("--resume", action="store_true",
                    help="continue training from the recipe's committed checkpoint: its curve is extended "
                         "and its record kept under 'resumed_from'")
    ap.add_argument("--record-only", action="store_true",
                    help="only re-write results/rl/pretrain.csv from the committed curve")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    models, cost_model, policy = RECIPES[a.recipe]
    if a.record_only:
        _save_curve(repo_root() / policy)
        return 0
    torch.set_num_threads(1)
    from xflow.agents.ppo import profile_args, train

    out = Path(a.out or ("/tmp/xflow_pretrained_quick.pt" if a.quick else repo_root() / policy))
    start = repo_root() / policy
    previous = _previous_stage(start) if a.resume else None
    seed = a.seed if a.seed is not None else (previous["record"]["seed"] + 1 if previous else 1)
    args = profile_args(a.profile, model=models[0], extra_models=models[1:], seed=seed,
                        init_checkpoint=str(start) if previous else "",
                        horizon=a.horizon, cost_model=cost_model, max_candidates=64,
                        total_timesteps=256 if a.quick else 10_000_000, num_steps=128,
                        time_budget_s=60.0 if a.quick else a.budget_s, exp_name="pretrain",
                        runs_dir=str(Path("/tmp") / "xflow_pretrain_runs"))
    load_before = os.getloadavg()[0]
    sha = git_sha()  # before this run rewrites the committed checkpoint (which would read as "+dirty")
    t0, c0 = time.time(), time.process_time()
    res = train(args)
    wall, cpu = time.time() - t0, time.process_time() - c0
    with atomic_output(out) as tmp:
        shutil.copyfile(res.run_dir / "agent.pt", tmp)
    shutil.copyfile(f"{res.run_dir / 'agent.pt'}.sha256", f"{out}.sha256")
    curve = out.with_suffix(".curve.csv")
    rows = curve_rows(previous["curve"] if previous else [], res.episodes)
    with atomic_output(curve) as tmp, tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(CURVE_FIELDS))
        w.writeheader()
        w.writerows(rows)
    steps = res.episodes[-1]["global_step"] if res.episodes else 0
    resumed = {"resumed_from": {**previous["record"], "sha256": previous["sha256"]}} if previous else {}
    atomic_write_json(out.with_suffix(".json"), {
        "checkpoint": out.name, "git_sha": sha, "seed": seed, "train_models": list(models),
        "recipe": a.recipe, "cost_model": cost_model,
        "profile": a.profile, "horizon_note": f"horizon {a.horizon} (X-RLflow: 50) to fit the budget",
        "args": asdict(args), "budget_s": args.time_budget_s, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
        "episodes": len(res.episodes), "env_steps_to_last_episode": steps,
        "machine": platform.processor() or platform.machine(), "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "command": "benchmarks/rl_pretrain.py " + " ".join(sys.argv[1:]), "curve": curve.name,
        "total_wall_s": round(wall + _total(previous, "wall_s"), 1),
        "total_episodes": len(res.episodes) + int(_total(previous, "episodes")), **resumed}, indent=2)
    if not a.quick:
        _save_curve(out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB), {len(res.episodes)} episodes in {wall:.0f} s")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
