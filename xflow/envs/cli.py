"""``xflow rl``: train and evaluate the PPO rewrite agent, validate recorded episodes.

* ``xflow rl train --model builder:inception_like --total-timesteps 2048 [--seed 1] …``
* ``xflow rl eval --checkpoint runs/RUN/agent.pt [--model zoo:squeezenet1_1]`` — the agent vs
  greedy and random search on the same environment settings
* ``xflow rl optimize IN.onnx -o OUT.onnx --checkpoint runs/RUN/agent.pt`` — the policy as a
  search method (best graph seen, verified, kept only if measured faster: never slower)
* ``xflow rl evaluate --model zoo:bert_base [--policy P] [--shape input=2x128x768]`` — the
  policy vs greedy / beam / random (``xflow.agents.policy_eval``): predicted cost ratio, measured
  speed-up with interval and verdict, search time; IQM over seeds for the stochastic methods
* ``xflow rl validate runs/RUN/episodes.csv`` — replay recorded episodes and check they reach
  the same graphs
* ``xflow rl env-bench --model zoo:inception_v3 [--steps 100] [--save]`` — env step time
  (median/IQR, thread CPU, through the measurement core), candidates per step, memory

torch and the environment are imported inside the handlers so ``xflow --help`` stays fast.
"""
from __future__ import annotations

import argparse
import json

from xflow.clitools import (Report, UsageError, add_check, add_command, add_output, existing_file, int_range,
                            output_dir, positive_int, safe_name, threads, zero_or)
from xflow.costs.names import COST_MODELS
from xflow.graphs.model_args import add_onnx_input
from xflow.runtime.cli import CLI_BACKENDS

__all__ = ["register"]


def _env_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-candidates", type=positive_int(100_000), default=None,
                   help="candidate actions (default: 64, or the checkpoint's)")
    p.add_argument("--horizon", type=positive_int(100_000), default=None,
                   help="episode length limit (default: 20, or the checkpoint's)")
    p.add_argument("--reward", choices=["cost", "measured", "hybrid"], default=None, help="reward object")
    p.add_argument("--cost-model", choices=list(COST_MODELS), default=None,
                   help="cost model of the reward (xflow.costs): " + "; ".join(f"{k}: {v}" for k, v in COST_MODELS.items()))


def _model_id(text: str) -> str:
    """A model id (``builder:NAME``, ``zoo:NAME``, ``file:PATH`` / ``*.onnx``, ``mem:NAME``) that names
    an existing builder, zoo model or file — checked at parse time, before any calibration."""
    from xflow.graphs.model_ids import parse_model_id
    from xflow.errors import XflowError

    try:
        scheme, name, _ = parse_model_id(text)
    except XflowError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if scheme == "builder":
        from xflow.graphs.builders import BUILDERS

        if name not in BUILDERS:
            raise argparse.ArgumentTypeError(f"unknown builder {name!r} in {text!r}; choose one of "
                                             f"{', '.join(sorted(BUILDERS))}")
    elif scheme == "zoo":
        from xflow.graphs.zoo import list_models

        if name not in list_models():
            raise argparse.ArgumentTypeError(f"unknown zoo model {name!r} in {text!r}; choose one of "
                                             f"{', '.join(list_models())}")
    elif scheme == "file":
        existing_file("model file")(name)
    elif scheme != "mem":
        raise argparse.ArgumentTypeError(f"unknown model id scheme {scheme!r} in {text!r}; "
                                         "use builder:NAME, zoo:NAME, file:PATH or mem:NAME")
    return text


_model_id.__name__ = "model id"


def _train(args: argparse.Namespace) -> Report:
    from xflow.agents.ppo import Args, train

    a = Args(model=args.model, seed=args.seed, total_timesteps=args.total_timesteps,
             num_steps=args.num_steps, runs_dir=args.runs_dir, exp_name=args.exp_name,
             write_results=args.write_results)
    for k in ("max_candidates", "horizon", "reward", "cost_model"):
        if getattr(args, k) is not None:
            setattr(a, k, getattr(args, k))
    res = train(a)
    _, rets = res.curve()
    data = {"run_name": res.run_name, "run_dir": str(res.run_dir),
            "checkpoint": str(res.run_dir / "agent.pt") if a.save_model else None,
            "episodes": len(rets), "last_return": float(rets[-1]) if len(rets) else None,
            "best_return": float(rets.max()) if len(rets) else None}
    steps = max(1, a.total_timesteps // a.num_steps) * a.num_steps
    data["steps"] = steps
    text = (f"trained PPO on {a.model} for {steps} steps ({len(rets)} episodes)\n"
            f"run dir: {res.run_dir}\n"
            + (f"results appended to {_results_dir('rl_ppo_train')}\n" if a.write_results else "")
            + (f"episodic return: last {rets[-1]:.3f}, best {rets.max():.3f} (% of initial cost)"
               if len(rets) else "no episode finished; raise --total-timesteps"))
    return Report(data=data, text=text)


def _results_dir(name: str) -> str:
    from xflow import paths

    return str(paths.results_dir(name))


def _check_timesteps(args: argparse.Namespace) -> None:
    if args.total_timesteps < args.num_steps:
        raise UsageError(f"--total-timesteps {args.total_timesteps} is below --num-steps {args.num_steps} "
                         "(one PPO rollout); raise --total-timesteps or lower --num-steps")


def _read_states(path: str) -> list:
    """The episodes of ``path``, or a clear error when it is not an episodes CSV (or holds none)."""
    import csv

    from xflow.envs.state import _CSV_FIELDS, read_states_csv
    from xflow.errors import XflowError

    expected = ", ".join(_CSV_FIELDS)
    try:
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        missing = [c for c in _CSV_FIELDS if c not in header]
        if missing:
            raise XflowError(f"'{path}' is not an episodes CSV: its header has no column(s) {', '.join(missing)} "
                             f"(an episodes CSV has {expected}); pass the episodes.csv of a run "
                             "(runs/RUN/episodes.csv)")
        states = read_states_csv(path)
    except XflowError:
        raise
    except (ValueError, KeyError, UnicodeDecodeError, csv.Error) as exc:
        raise XflowError(f"'{path}' is not a readable episodes CSV ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}); pass the episodes.csv of a run") from None
    if not states:
        raise XflowError(f"'{path}' holds no episodes (header only); train longer so episodes finish, "
                         "or pass another run's episodes.csv")
    return states


def _eval(args: argparse.Namespace) -> Report:
    import torch

    from xflow.agents.evaluation import evaluate_agent, greedy_episode, random_episode
    from xflow.agents.ppo import Args, make_env
    from xflow.nn import GraphActorCritic

    torch.set_num_threads(1)
    agent, extra = GraphActorCritic.load_with_extra(args.checkpoint)
    saved = extra.get("args", {})
    a = Args(**{k: v for k, v in saved.items() if k in Args.__dataclass_fields__})
    for k in ("max_candidates", "horizon", "reward", "cost_model"):
        if getattr(args, k) is not None:
            setattr(a, k, getattr(args, k))
    a.max_candidates = agent.num_actions - 1
    models = args.model or [a.model]
    rows, lines = [], []
    for m in models:
        env = make_env(a, model=m)
        res = {"rl": evaluate_agent(agent, env, seed=args.seed)[0],
               "greedy": greedy_episode(env, seed=args.seed),
               "random": random_episode(env, seed=args.seed)}
        for name, r in res.items():
            rows.append({"model": m, "search": name, "return": r["episodic_return"],
                         "steps": r["episodic_length"], "cost_ratio": r["final_cost_ratio"],
                         "best_cost_ratio": r["best_cost_ratio"], "best_step": r["best_step"],
                         "rules": r["rules"]})
            lines.append(f"{m:<32} {name:<7} return {r['episodic_return']:+8.3f}  "
                         f"final cost x{r['final_cost_ratio']:.4f}  best x{r['best_cost_ratio']:.4f} "
                         f"(step {r['best_step']})  steps {r['episodic_length']}")
    return Report(data={"checkpoint": args.checkpoint, "results": rows}, text="\n".join(lines))


def _validate(args: argparse.Namespace) -> Report:
    import gymnasium as gym

    from xflow.envs import ENV_ID  # registers the environments

    states = _read_states(args.states)
    rows, ok_all = [], True
    envs: dict = {}
    for i, s in enumerate(states):
        key = (s.model_id, json.dumps(s.config, sort_keys=True))
        if key not in envs:
            envs[key] = gym.make(ENV_ID, model=s.model_id,
                                 **s.config).unwrapped
        v = envs[key].validate(s, check_reward=args.check_reward)
        ok_all &= v.ok
        rows.append({"index": i, "model_id": s.model_id, "ok": v.ok, "errors": list(v.errors)})
    text = "\n".join(f"{r['index']:4d} {r['model_id']:<32} {'ok' if r['ok'] else 'FAIL ' + '; '.join(r['errors'])}"
                     for r in rows)
    if not ok_all:
        from xflow.errors import XflowError

        raise XflowError(f"{sum(not r['ok'] for r in rows)} of {len(rows)} episodes did not "
                         f"replay:\n{text}")
    return Report(data={"states": len(rows), "ok": ok_all, "results": rows},
                  text=text + f"\n{len(rows)} episode(s) replayed exactly")


def env_bench_records(res: dict, *, model: str, label: str, mode: str) -> list[dict]:
    """Result rows of one :func:`xflow.envs.bench.env_bench` run (one per measured variant), with
    candidates per step, memory at the checkpoints and the per-round samples."""
    import numpy as np

    m = res["measurement"]
    cands = np.asarray(res["candidates"], dtype=float)
    mem = {int(r["step"]): r for r in res["memory"]}
    rows = m.records(model=model, label=label, mode=mode, steps_total=res["steps_total"],
                     candidates_median=float(np.median(cands)) if cands.size else 0.0,
                     candidates_max=int(cands.max()) if cands.size else 0,
                     rechecked_median=float(np.median(res["rechecked"])) if res["rechecked"] else 0.0,
                     peak_rss_mb=round(res["peak_rss_mb"], 1))
    for r in rows:
        r["samples_ms"] = ";".join(f"{1e3 * t:.3f}" for t in m.times(r["variant"], "thread"))
        for k in (1, 50, 250, 500):
            row = mem.get(k, {})
            r[f"rss_mb_{k}"] = round(row["rss_mb"], 1) if "rss_mb" in row else None
            r[f"traced_mb_{k}"] = round(row["traced_mb"], 2) if "traced_mb" in row else None
            r[f"traced_peak_mb_{k}"] = round(row["traced_peak_mb"], 2) if "traced_peak_mb" in row else None
    return rows


def save_env_bench(rows: list[dict], name: str = "envs/env_bench.csv") -> str:
    """Write ``rows`` with :func:`xflow.tables.save_result`, keeping the rows of other
    (model, label, mode) combinations already in the file."""
    import pandas as pd

    from xflow.tables import results_root, save_result

    from xflow.results import provenance

    prov = provenance("cpu", 1)
    new = pd.DataFrame([{**r, **{k: v for k, v in prov.items() if k not in r}} for r in rows])
    path = results_root() / name
    if path.exists():
        old = pd.read_csv(path)
        keys = {(r["model"], r["label"], r["mode"]) for r in rows}
        old = old[[(a, b, c) not in keys for a, b, c in zip(old["model"], old["label"], old["mode"])]]
        new = pd.concat([old, new], ignore_index=True)
    return str(save_result(new, name))


def _env_bench(args: argparse.Namespace) -> Report:
    from xflow.envs.bench import env_bench

    mode = "from-scratch" if args.from_scratch else "incremental"
    res = env_bench(args.model, steps=args.steps, seed=args.seed, max_candidates=args.max_candidates,
                    cost_model=args.cost_model or "nominal", incremental=not args.from_scratch,
                    tracemalloc=args.tracemalloc, progress=not args.json)
    m = res["measurement"]
    rows = env_bench_records(res, model=args.model, label=args.label, mode=mode)
    step = next(r for r in rows if r["variant"] == "step")
    data = {"model": args.model, "mode": mode, "steps_timed": args.steps, "steps_total": res["steps_total"],
            "step_ms": {"median": step["thread_cpu_ms"], "iqr": step["iqr_ms"], "wall_median": step["wall_ms"],
                        "clock": m.clock},
            "aa": {"ratio": next(r["ratio"] for r in rows if r["variant"] != "step"),
                   "noise_floor": m.noise_floor()},
            "candidates_per_step": {"median": step["candidates_median"], "max": step["candidates_max"]},
            "rechecked_sites_median": step["rechecked_median"],
            "memory": res["memory"], "peak_rss_mb": res["peak_rss_mb"], "conditions": m.conditions()}
    if args.save:
        data["wrote"] = save_env_bench(rows)
    mem = ", ".join(f"step {r['step']}: RSS {r['rss_mb']:.0f} MB" + (f", traced {r['traced_mb']:.1f} MB"
                                                                      if "traced_mb" in r else "")
                    for r in res["memory"] if "rss_mb" in r)
    text = (f"{args.model} ({mode}): step {step['thread_cpu_ms']:.1f} ms median thread CPU "
            f"(IQR {step['iqr_ms']:.1f} ms; wall {step['wall_ms']:.1f} ms) over {args.steps} rounds, "
            f"{res['steps_total']} env steps; candidates/step median {step['candidates_median']:.0f}\n"
            f"memory: {mem}; peak RSS {res['peak_rss_mb']:.0f} MB"
            + ("\nbusy machine: foreign CPU load during the run; timings are contended" if m.busy else "")
            + (f"\nwrote {data['wrote']}" if args.save else ""))
    return Report(data=data, text=text)


def _optimize(args: argparse.Namespace) -> Report:
    import onnx

    from xflow.agents.search import rl_search
    from xflow.graphs import load_model
    from xflow.rewrites.search import pick_fastest
    from xflow.rewrites.verify import verify_rewrite

    if args.repeats == 1 or args.repeats < 0:
        from xflow.errors import XflowError

        raise XflowError("--repeats must be 0 (keep the predicted best) or >= 2 (an interval needs two rounds)")
    if args.checkpoint is None:
        from xflow.agents.policy_eval import default_policy

        args.checkpoint = str(default_policy())
    original = load_model(args.model).model
    res = rl_search(original, args.checkpoint, horizon=args.horizon, cost_model=args.cost_model)
    data = {"input": args.model, "checkpoint": args.checkpoint, **res.summary(),
            "actions": res.actions}
    best = res.model
    if res.actions and args.repeats > 0:
        best, meas = pick_fastest(original, res.model, intra_threads=args.threads,
                                  repeats=args.repeats)
        data.update(meas)
    elif not res.actions:
        best = original
    lines = [f"rl search on {args.model}: {len(res.actions)} rewrite(s) in {res.time_s:.1f} s",
             f"  predicted cost {res.initial_cost:.4f} -> {res.cost:.4f} ms "
             f"(speed-up {res.predicted_speedup:.3f}x)"]
    lines += [f"  {i + 1}. {a['rule']} at {a['location']}" for i, a in enumerate(res.actions)]
    if "measured_speedup" in data:
        from xflow.runtime.measure import format_speedup

        lines.append(f"  ORT latency ({args.threads} thread(s), ORT_ENABLE_ALL, {data['clock']} clock): "
                     f"{data['original_ms']:.3f} -> {data['rewritten_ms']:.3f} ms, measured speed-up "
                     f"{format_speedup(data['measured_speedup'], data['speedup_ci'], data['verdict'])}; "
                     f"kept the {data['kept']} graph")
    if args.output:
        from xflow.safeio import atomic_copy, atomic_output

        if best is original or data.get("kept") == "original":
            atomic_copy(args.model, args.output)  # unchanged input: copy its bytes, never re-serialize
        else:
            verify_rewrite(original, best, n_trials=2)  # refuses to write a graph whose outputs differ
            with atomic_output(args.output) as tmp:
                onnx.save(best, str(tmp))
        data["output"] = args.output
        lines.append(f"  wrote {args.output}")
    return Report(data=data, text="\n".join(lines))


def _evaluate(args: argparse.Namespace) -> Report:
    from xflow.agents.policy_eval import default_policy, evaluate_policy, parse_shape
    from xflow.runtime.measure import format_speedup

    shapes = dict(parse_shape(s) for s in args.shape or [])
    methods = ["rl", "rl-sample", "greedy", "beam", "random"] + (["taso"] if args.taso else []) \
        + (["tensat"] if args.tensat else [])
    policy = args.policy or str(default_policy())
    res = evaluate_policy(policy, args.model, shapes=shapes, methods=methods, seeds=args.seeds,
                          cost_model=args.cost_model, horizon=args.horizon, repeats=args.repeats,
                          threads=args.threads, time_budget_s=args.time_budget_s, measure=args.repeats > 0,
                          progress=not getattr(args, "json", False), backend=args.backend)
    lines = [f"{res['model_id']}: policy {policy}, cost model {res['cost_model']}, horizon {res['horizon']}, "
             f"{args.seeds} seed(s) for rl-sample and random (IQM [95% bootstrap])"]
    for r in res["methods"]:
        pred = (f"x{r['predicted_ratio']:.4f} [{r['predicted_lo']:.4f}, {r['predicted_hi']:.4f}]"
                if r["stochastic"] else f"x{r['predicted_ratio']:.4f}")
        if r["measured_speedup"] is None:
            meas = r["verdict"]
        elif r["stochastic"]:
            meas = (f"{r['measured_speedup']:.3f}x [{r['speedup_lo']:.3f}, {r['speedup_hi']:.3f}] "
                    f"({r['verdict']})")
        elif r["verdict"] == "unchanged":
            meas = "unchanged graph"
        else:
            meas = format_speedup(r["measured_speedup"], (r["speedup_lo"], r["speedup_hi"]), r["verdict"])
        lines.append(f"  {r['method']:<9} predicted cost {pred:<28} measured {meas:<40} "
                     f"search {r['search_time_s']:.1f} s")
    m = res["measurement"]
    if m:
        where = "ORT level all" if m["backend"] == "ort" else f"backend {m['backend']}"
        lines.append(f"  measured: {where}, {m['threads']} thread(s), {m['repeats']} interleaved rounds, "
                     f"{m['clock']} clock, A/A noise floor {m['noise_floor']:.3f}"
                     + ("; busy machine (contended)" if m["busy"] else ""))
    return Report(data=res, text="\n".join(lines))


def _need_subcommand(args: argparse.Namespace) -> Report:
    from xflow.errors import XflowError

    raise XflowError("choose a subcommand: xflow rl {train,eval,evaluate,optimize,validate,env-bench} "
                     "(see xflow rl --help)")


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add ``xflow rl {train,eval,evaluate,optimize,env-bench,validate}``."""
    rl = add_command(subparsers, "rl", None, help="reinforcement-learning graph rewriting (X-RLflow)")
    sub = rl.add_subparsers(dest="rl_command", metavar="SUBCOMMAND")
    rl.set_defaults(func=_need_subcommand)

    p = add_command(sub, "train", _train, help="train the PPO agent on one graph")
    p.add_argument("--model", type=_model_id, default="builder:inception_like",
                   help="model id: builder:NAME, zoo:NAME or file:PATH (default: builder:inception_like)")
    p.add_argument("--total-timesteps", type=positive_int(100_000_000), default=2048,
                   help="environment steps to train for")
    p.add_argument("--num-steps", type=positive_int(1_000_000), default=128, help="rollout length per PPO iteration")
    p.add_argument("--seed", type=int_range(0), default=1)
    p.add_argument("--runs-dir", type=output_dir("runs folder"), default="runs", help="where runs/{run_name} goes")
    p.add_argument("--exp-name", type=safe_name("--exp-name"), default="ppo", help="run name prefix")
    p.add_argument("--write-results", action="store_true", help="also write results/rl_ppo_train records")
    _env_args(p)
    add_check(p, _check_timesteps)

    p = add_command(sub, "eval", _eval, help="evaluate a checkpoint against greedy and random search")
    p.add_argument("--checkpoint", type=existing_file("checkpoint"), required=True,
                   help="agent.pt written by `xflow rl train`")
    p.add_argument("--model", action="append", type=_model_id, default=None,
                   help="model id to evaluate on (repeatable; default: the training model)")
    p.add_argument("--seed", type=int_range(0), default=0)
    _env_args(p)

    p = add_command(sub, "optimize", _optimize,
                    help="optimize an ONNX file with a trained policy (verified, never slower)")
    add_onnx_input(p, help="input .onnx file")
    p.add_argument("--checkpoint", type=existing_file("checkpoint"), default=None,
                   help="agent.pt written by `xflow rl train` (default: the committed pretrained policy, "
                        "data/policies/xrlflow_pretrained.pt)")
    add_output(p, inputs=("model", "checkpoint"), default=None, suffixes=(".onnx",),
               help="write the measured-faster of input / result")
    p.add_argument("--horizon", type=positive_int(100_000), default=None,
                   help="episode length (default: the checkpoint's)")
    p.add_argument("--cost-model", choices=list(COST_MODELS), default=None,
                   help="cost model ranking the graphs seen (default: the checkpoint's)")
    p.add_argument("--threads", type=threads(), default=1, help="ORT intra-op threads for the measurement")
    p.add_argument("--repeats", type=zero_or(int_range(2, 100_000, hint="an interval needs two rounds")), default=20,
                   help="interleaved measurement rounds (0: keep the predicted best; else >= 2)")

    p = add_command(sub, "evaluate", _evaluate,
                    help="a policy vs greedy/beam/random search on one model: predicted and measured gains")
    p.add_argument("--policy", type=existing_file("policy"), default=None,
                   help="agent.pt (default: the committed pretrained policy, data/policies/xrlflow_pretrained.pt)")
    p.add_argument("--model", type=_model_id, required=True, help="model id: zoo:NAME, builder:NAME or file:PATH")
    p.add_argument("--shape", action="append", default=None, metavar="NAME=DIMS",
                   help="re-export a zoo model at this input shape (e.g. input=4x3x224x224; repeatable)")
    p.add_argument("--seeds", type=positive_int(1000), default=5, help="seeds of the stochastic methods (>= 5 for IQM)")
    p.add_argument("--horizon", type=positive_int(100_000), default=None,
                   help="episode length of rl and random, greedy's step budget (default: the policy's)")
    p.add_argument("--cost-model", choices=list(COST_MODELS), default=None,
                   help="cost model of every search (default: the policy's)")
    p.add_argument("--time-budget-s", type=float, default=60.0, help="time budget of each search")
    p.add_argument("--repeats", type=zero_or(int_range(2, 100_000, hint="an interval needs two rounds")), default=20,
                   help="interleaved measurement rounds (0: predicted only)")
    p.add_argument("--threads", type=threads(), default=1, help="intra-op threads for the measurement")
    p.add_argument("--backend", choices=list(CLI_BACKENDS), default="ort",
                   help="where the final graphs are measured (ort; torch, torch-cuda: generated PyTorch)")
    p.add_argument("--taso", action="store_true", help="also TASO's search")
    p.add_argument("--tensat", action="store_true", help="also TENSAT's equality saturation")

    p = add_command(sub, "env-bench", _env_bench,
                    help="time env steps of a seeded random rollout (thread CPU), candidates, memory")
    p.add_argument("--model", type=_model_id, default="zoo:inception_v3", help="model id")
    p.add_argument("--steps", type=positive_int(100_000), default=100,
                   help="timed rounds (the A/A control doubles the env steps)")
    p.add_argument("--seed", type=int_range(0), default=0, help="seed of the random rollout")
    p.add_argument("--max-candidates", type=positive_int(100_000), default=500, help="candidate actions")
    p.add_argument("--cost-model", choices=list(COST_MODELS), default=None,
                   help="cost model of the env (default: nominal, never measured)")
    p.add_argument("--from-scratch", action="store_true",
                   help="rebuild candidates every step (the non-incremental reference)")
    p.add_argument("--tracemalloc", action="store_true",
                   help="also replay the rollout under tracemalloc (traced heap at steps 1/50/250/500)")
    p.add_argument("--label", type=safe_name("--label"), default="cli", help="label of the result rows")
    p.add_argument("--save", action="store_true", help="write results/envs/env_bench.csv")

    p = add_command(sub, "validate", _validate, help="replay recorded episodes (episodes.csv) exactly")
    p.add_argument("states", type=existing_file("episodes CSV"), help="CSV of EpisodeState rows (runs/RUN/episodes.csv)")
    p.add_argument("--check-reward", action="store_true",
                   help="also require the recorded reward (same cost-model calibration)")
