"""``xflow rewrite …``: list the rules, apply one, or search for a cheaper equivalent graph.

* ``xflow rewrite list`` (alias ``rules``) — every registered rule with its substitution;
* ``xflow rewrite apply FILE.onnx --rule NAME [--all] [--index I] -o OUT.onnx`` — apply a rule at
  its first (``--index``-th) match, or repeatedly until it no longer matches (``--all``);
* ``xflow rewrite search FILE.onnx --method greedy|beam|random --budget N [-o OUT.onnx]`` — run a
  search baseline over the analytic (or calibrated / measured) cost and report the cost and the
  measured ORT latency (ORT_ENABLE_ALL, interleaved repeats) before and after;
* ``xflow rewrite optimize IN.onnx -o OUT.onnx --search greedy|beam|random|rl [--budget-s S]
  [--checkpoint CKPT]`` — the same with a time budget, listing the applied rewrites; ``rl`` rolls
  out a trained PPO policy (:func:`xflow.agents.search.rl_search`, ``xflow rl train`` makes one).

Every written model is verified against the input (ORT, optimizations off, random inputs); a
model whose outputs differ is never written. ``search -o`` writes the input unchanged when the
rewritten graph measures slower ("never slower").
"""
from __future__ import annotations

import argparse
from pathlib import Path

from xflow.clitools import Report, add_command

__all__ = ["register"]


def _load(path: str):
    from xflow.graphs.model import load_model

    return load_model(path).model


def _save(model, path: str) -> str:
    import onnx

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return str(out)


def _cmd_list(args: argparse.Namespace) -> Report:
    from xflow.rewrites import RULES

    rows = []
    for r in RULES:
        doc = (type(r).__doc__ or "").strip().splitlines()[0].replace("``", "")
        doc = doc.split(" Location:")[0]
        rows.append({"name": r.name, "module": type(r).__module__.rsplit(".", 1)[-1], "rewrite": doc})
    width = max(len(r["name"]) for r in rows)
    text = "\n".join(f"{r['name']:<{width}}  {r['rewrite']}" for r in rows)
    return Report({"rules": rows}, text)


def _cmd_apply(args: argparse.Namespace) -> Report:
    from xflow.errors import XflowError
    from xflow.rewrites import get_rule
    from xflow.rewrites.verify import verify_rewrite

    rule = get_rule(args.rule)
    original = _load(args.model)
    model = original
    applied = []
    while True:
        locs = rule.match(model)
        if not locs:
            break
        if args.index >= len(locs):
            raise XflowError(f"--index {args.index} but rule {rule.name!r} matches {len(locs)} time(s)")
        loc = locs[0 if args.all else args.index]
        model = rule.apply(model, loc)
        applied.append(loc.to_json())
        if not args.all or len(applied) >= args.max_steps:
            break
    if not applied:
        reasons = [f"{loc}: {why}" for loc, why in rule.explain(original)][:10]
        raise XflowError(f"rule {rule.name!r} does not match {args.model}"
                         + ("; near misses:\n  " + "\n  ".join(reasons) if reasons else ""))
    err = verify_rewrite(original, model, n_trials=2)
    out = _save(model, args.output)
    data = {"model": args.model, "rule": rule.name, "applied": applied, "output": out,
            "nodes_before": len(original.graph.node), "nodes_after": len(model.graph.node), "max_abs_err": err}
    text = (f"applied {rule.name} {len(applied)}x to {args.model}: {data['nodes_before']} -> "
            f"{data['nodes_after']} nodes (max |err| {err:.2e}); wrote {out}")
    return Report(data, text)


def _cost_fn(name: str, threads: int):
    from xflow.errors import UnknownName
    from xflow.rewrites.cost import AnalyticCost, MeasuredCost, calibrate

    if name == "analytic":
        return AnalyticCost()
    if name == "calibrated":
        return AnalyticCost(calibrate("cpu", intra_threads=threads))
    if name == "measured":
        return MeasuredCost(intra_threads=threads, repeats=5, warmup=2)
    if name == "layout":  # rl-env's calibrated roofline with the Split-of-Conv layout-reorder term
        try:
            from xflow.envs.cost_models import make_cost_model
        except ModuleNotFoundError:
            raise UnknownName("cost 'layout' needs xflow.envs (not in this checkout); use analytic") from None
        return make_cost_model("analytic", threads=threads)
    raise UnknownName(f"unknown cost {name!r}; use analytic, calibrated, layout or measured")


def _cmd_search(args: argparse.Namespace) -> Report:
    from xflow.rewrites.search import pick_fastest, search, trajectory_models
    from xflow.runtime.measure import format_speedup

    if args.repeats == 1 or args.repeats < 0:
        from xflow.errors import XflowError

        raise XflowError("--repeats must be 0 (do not measure) or >= 2 (an interval needs two rounds)")
    original = _load(args.model)
    if args.method == "rl":
        res = _rl_search(original, args)
    else:
        kwargs = dict(budget=args.budget, time_budget_s=args.time_budget_s, max_candidates=args.max_candidates)
        if args.method == "beam":
            kwargs["alpha"] = args.alpha
        if args.method == "random":
            kwargs["seed"] = args.seed
        res = search(original, args.method, _cost_fn(args.cost, args.threads), **kwargs)
    data = {"model": args.model, **res.summary(), "actions": res.actions}
    best = res.model
    if args.repeats > 0 and res.actions:
        # measure prefixes of the trajectory too: keep the measured-fastest graph (or the input)
        points = trajectory_models(original, res.actions, max_points=args.measure_points)
        best, meas = pick_fastest(original, [m for _, m in points], intra_threads=args.threads,
                                  repeats=args.repeats)
        meas["kept_actions"] = points[meas.pop("kept_index")][0] if meas["kept"] == "rewritten" else 0
        data.update(meas)
    if args.output:
        data["output"] = _save(best, args.output)
    cost_name = "checkpoint's cost model" if args.method == "rl" else args.cost
    lines = [f"{args.method} search on {args.model}: {len(res.actions)} rewrite(s) "
             f"[{', '.join(a['rule'] for a in res.actions) or 'none'}] in {res.time_s:.1f} s",
             f"  cost ({cost_name}): {res.initial_cost:.4f} -> {res.cost:.4f} "
             f"(predicted speed-up {res.predicted_speedup:.3f}x)"]
    if "measured_speedup" in data:
        lines.append(f"  ORT latency ({args.threads} thread(s), ORT_ENABLE_ALL, {data['clock']} clock): "
                     f"{data['original_ms']:.3f} ms -> {data['rewritten_ms']:.3f} ms, measured speed-up "
                     f"{format_speedup(data['measured_speedup'], data['speedup_ci'], data['verdict'])} "
                     f"(A/A noise ±{100 * data['noise_floor']:.1f}%); kept the {data['kept']} graph "
                     f"({data['kept_actions']} of {len(res.actions)} rewrites)")
    if args.output:
        lines.append(f"  wrote {data['output']}")
    return Report(data, "\n".join(lines))


def _rl_search(original, args: argparse.Namespace):
    """Roll out the PPO policy in ``args.checkpoint`` (horizon and cost model from the checkpoint)."""
    from xflow.errors import XflowError

    if not getattr(args, "checkpoint", None):
        raise XflowError("--search rl needs --checkpoint CKPT (an agent.pt from `xflow rl train`)")
    try:
        from xflow.agents.search import rl_search
    except ModuleNotFoundError as exc:  # torch / torch_geometric missing
        raise XflowError(f"--search rl needs the RL agent ({exc}); choose greedy, beam or random") from None
    return rl_search(original, args.checkpoint, horizon=getattr(args, "horizon", None))


def _cmd_optimize(args: argparse.Namespace) -> Report:
    from xflow.rewrites.verify import verify_rewrite

    ns = argparse.Namespace(**vars(args))
    ns.method, ns.time_budget_s = args.search, args.budget_s
    report = _cmd_search(ns)
    out = report.data.get("output")
    if out:  # belt and braces: re-check the written file against the input
        import onnx

        verify_rewrite(_load(args.model), onnx.load(out), n_trials=2)
    lines = [report.text] + [f"  {i + 1}. {a['rule']} at {a['location']['nodes']}" for i, a in enumerate(report.data["actions"])]
    return Report(report.data, "\n".join(lines))


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add ``xflow rewrite {list,rules,apply,search,optimize}``."""
    p = add_command(subparsers, "rewrite", None, help="verified graph rewrite rules and search baselines")
    sub = p.add_subparsers(dest="rewrite_command", metavar="ACTION", required=True)
    add_command(sub, "list", _cmd_list, help="list the rewrite rules")
    add_command(sub, "rules", _cmd_list, help="list the rewrite rules (alias of list)")
    a = add_command(sub, "apply", _cmd_apply, help="apply one rule to an ONNX file")
    a.add_argument("model", help="input .onnx file")
    a.add_argument("--rule", required=True, help="rule name (see `xflow rewrite list`)")
    a.add_argument("--all", action="store_true", help="apply repeatedly until the rule no longer matches")
    a.add_argument("--index", type=int, default=0, help="which match to apply (default: the first)")
    a.add_argument("--max-steps", type=int, default=1000, help="cap on --all applications")
    a.add_argument("-o", "--output", required=True, help="output .onnx file")
    s = add_command(sub, "search", _cmd_search, help="search rewrite sequences for a cheaper graph")
    s.add_argument("model", help="input .onnx file")
    s.add_argument("--method", choices=["greedy", "beam", "random"], default="greedy")
    s.add_argument("--budget", type=int, default=20, help="steps (greedy/random) or expansions (beam)")
    s.add_argument("--time-budget-s", type=float, default=None, help="stop after this many seconds")
    s.add_argument("--cost", choices=["analytic", "calibrated", "layout", "measured"], default="analytic",
                   help="analytic roofline (nominal), calibrated (ORT micro-benchmarks), layout "
                        "(xflow.envs calibrated roofline + conv-layout reorder term), measured (ORT latency)")
    s.add_argument("--alpha", type=float, default=1.05, help="beam relaxation (accept cost < alpha * best)")
    s.add_argument("--seed", type=int, default=0, help="random-walk seed")
    s.add_argument("--max-candidates", type=int, default=500)
    s.add_argument("--measure-points", type=int, default=4,
                   help="trajectory prefixes measured against the input (the significantly fastest is kept)")
    s.add_argument("--threads", type=int, default=1, help="ORT intra-op threads for the measurement")
    s.add_argument("--repeats", type=int, default=20,
                   help="interleaved measurement rounds (0: do not measure; else >= 2)")
    s.add_argument("-o", "--output", default=None, help="write the faster of input / result here")
    o = add_command(sub, "optimize", _cmd_optimize,
                    help="search, verify and write the measured-faster of input / result (never slower)")
    o.add_argument("model", help="input .onnx file")
    o.add_argument("-o", "--output", required=True, help="output .onnx file")
    o.add_argument("--search", choices=["greedy", "beam", "random", "rl"], default="beam")
    o.add_argument("--budget", type=int, default=30, help="steps (greedy/random) or expansions (beam)")
    o.add_argument("--budget-s", type=float, default=60.0, help="time budget of the search in seconds")
    o.add_argument("--cost", choices=["analytic", "calibrated", "layout", "measured"], default="analytic",
                   help="analytic roofline (nominal), calibrated (ORT micro-benchmarks), layout "
                        "(xflow.envs calibrated roofline + conv-layout reorder term), measured (ORT latency)")
    o.add_argument("--alpha", type=float, default=1.05)
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--max-candidates", type=int, default=500)
    o.add_argument("--measure-points", type=int, default=4,
                   help="trajectory prefixes measured against the input (the fastest is kept)")
    o.add_argument("--threads", type=int, default=1)
    o.add_argument("--repeats", type=int, default=20)
    o.add_argument("--checkpoint", default=None, help="agent.pt of a trained PPO policy (--search rl)")
    o.add_argument("--horizon", type=int, default=None,
                   help="--search rl: rollout length (default: the checkpoint's training horizon)")
