"""``xflow rewrite …``: list the rules, apply one, or search for a cheaper equivalent graph.

* ``xflow rewrite list`` (alias ``rules``) — every registered rule with its substitution;
  ``--generated`` lists the verified generated rules with provenance and verification evidence;
* ``xflow rewrite generate [--max-ops 3]`` — regenerate the rule set the TASO way;
* ``xflow rewrite apply FILE.onnx --rule NAME [--all] [--index I] -o OUT.onnx`` — apply a rule at
  its first (``--index``-th) match, or repeatedly until it no longer matches (``--all``);
* ``xflow rewrite search FILE.onnx --method greedy|beam|random|taso|tensat --budget N [-o OUT.onnx]`` —
  run a search baseline over a cost model of :mod:`xflow.costs` (``nominal`` roofline by default;
  ``calibrated``, ``measured-ops``, ``measured``) and report the cost and the measured ORT latency
  (ORT_ENABLE_ALL, interleaved rounds, interval and verdict) before and after;
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

from xflow.clitools import (Report, add_command, add_output, existing_file, finite_float, int_range, positive_int,
                            threads, zero_or)
from xflow.costs.names import COST_MODELS as COST_CHOICES
from xflow.graphs.model_args import add_onnx_input

__all__ = ["register"]



def _load(path: str):
    from xflow.graphs.model import load_model

    return load_model(path)


def _save(model, path: str, *, source: str | None = None) -> str:
    """Write ``model`` to ``path`` atomically; with ``source`` (the input file, kept unchanged)
    copy its bytes instead of re-serializing it."""
    import onnx

    from xflow.graphs.ir import as_proto
    from xflow.safeio import atomic_copy, atomic_output

    out = Path(path)
    if source is not None:
        atomic_copy(source, out)
        return str(out)
    with atomic_output(out) as tmp:
        onnx.save(as_proto(model), str(tmp))
    return str(out)


def _cmd_list(args: argparse.Namespace) -> Report:
    from xflow.rewrites import RULES

    if getattr(args, "generated", False):
        return _list_generated(args)

    rows = []
    for r in RULES:
        doc = (type(r).__doc__ or "").strip().splitlines()[0].replace("``", "")
        doc = doc.split(" Location:")[0]
        rows.append({"name": r.name, "module": type(r).__module__.rsplit(".", 1)[-1], "rewrite": doc})
    width = max(len(r["name"]) for r in rows)
    text = "\n".join(f"{r['name']:<{width}}  {r['rewrite']}" for r in rows)
    return Report({"rules": rows}, text)


def _list_generated(args: argparse.Namespace) -> Report:
    """The verified generated rules with provenance and verification evidence."""
    from collections import Counter

    from xflow.rewrites.generator.rule import load_rule_set

    doc = load_rule_set(args.rules_file)
    rules = []
    for r in doc["rules"]:
        ev = r["verification"]
        rules.append({"name": r["name"], "class": r["class"], "domain": r["domain"],
                      "src": r["src"], "dst": r["dst"], "provenance": r["provenance"],
                      "verification": {"verified": ev["verified"], "z3": ev["z3"].get("result"),
                                       "random_tests": len(ev["random_tests"]),
                                       "random_tests_passed": sum(1 for t in ev["random_tests"] if t["ok"])}})
    classes = Counter(r["class"] for r in rules)
    data = {"n_rules": len(rules), "n_rejected": len(doc["rejected"]), "classes": dict(classes),
            "generator": {k: v for k, v in doc["generator"].items() if k != "domains"}, "rules": rules}
    lines = [f"{len(rules)} verified generated rules ({len(doc['rejected'])} candidates rejected); "
             + ", ".join(f"{c}: {n}" for c, n in sorted(classes.items()))]
    lines += [f"{r['name']:<32} {r['src']['term']}  ->  {r['dst']['term']}   [z3 {r['verification']['z3']}]"
              for r in rules]
    return Report(data, "\n".join(lines))


def _cmd_generate(args: argparse.Namespace) -> Report:
    """Run the generator and write the rule set (atomically)."""
    from xflow.rewrites.generator.generate import RULES_PATH, generate, save_rules

    doc = generate(args.max_ops, args.domain or None, seed=args.seed, n_random=args.random_envs,
                   z3_timeout_ms=args.z3_timeout_ms, progress=not args.json)
    out = save_rules(doc, args.out or RULES_PATH)
    data = {"output": str(out), "n_rules": len(doc["rules"]), "n_rejected": len(doc["rejected"]),
            "generator": doc["generator"]}
    text = (f"generated {len(doc['rules'])} verified rules ({len(doc['rejected'])} rejected) with up to "
            f"{args.max_ops} ops in {doc['generator']['time_s']} s; wrote {out}")
    return Report(data, text)


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
            "nodes_before": len(original.nodes), "nodes_after": len(model.nodes), "max_abs_err": err}
    text = (f"applied {rule.name} {len(applied)}x to {args.model}: {data['nodes_before']} -> "
            f"{data['nodes_after']} nodes (max |err| {err:.2e}); wrote {out}")
    return Report(data, text)


def _cost_model(name: str, threads: int):
    """The :mod:`xflow.costs` model called ``name`` (``measured``: 5 repeats after 2 warm-ups)."""
    from xflow.costs import MeasuredCost, make_cost_model

    if name == "measured":
        return MeasuredCost(threads=threads, repeats=5, warmup=2)
    return make_cost_model(name, threads=threads)


def _cmd_search(args: argparse.Namespace) -> Report:
    from xflow.rewrites.search import pick_fastest, search, trajectory_models
    from xflow.runtime.measure import format_speedup

    if args.repeats == 1 or args.repeats < 0:
        from xflow.errors import XflowError

        raise XflowError("--repeats must be 0 (do not measure) or >= 2 (an interval needs two rounds)")
    original = _load(args.model)
    if args.method == "rl":
        res = _rl_search(original, args)
    elif args.method in ("taso", "tensat"):
        res = _baseline_search(original, args)
    else:
        kwargs = dict(budget=args.budget, time_budget_s=args.time_budget_s, max_candidates=args.max_candidates)
        if args.method == "beam":
            kwargs["alpha"] = args.alpha
        if args.method == "random":
            kwargs["seed"] = args.seed
        if getattr(args, "rules", None):
            from xflow.rewrites.searches import rule_set

            kwargs["rules"] = rule_set(args.rules)
        res = search(original, args.method, _cost_model(args.cost, args.threads), **kwargs)
    data = {"model": args.model, **res.summary(), "actions": res.actions}
    if getattr(res, "stats", None):
        data["tensat"] = res.stats
    best = res.model
    if args.repeats > 0 and res.actions:
        # measure prefixes of the trajectory too: keep the measured-fastest graph (or the input)
        points = trajectory_models(original, res.actions, max_points=args.measure_points)
        best, meas = pick_fastest(original.model, [m for _, m in points], intra_threads=args.threads,
                                  repeats=args.repeats)
        meas["kept_actions"] = points[meas.pop("kept_index")][0] if meas["kept"] == "rewritten" else 0
        data.update(meas)
    elif args.repeats > 0 and args.method == "tensat" and res.model is not original:
        # an e-graph extraction has no rewrite sequence: the guard compares the extracted graph itself
        best, meas = pick_fastest(original, [res.model], intra_threads=args.threads, repeats=args.repeats)
        meas.pop("kept_index")
        meas["kept_actions"] = 0
        data.update(meas)
    if args.output:
        # an e-graph extraction has no actions: it changed the graph when its stats say so
        changed = bool(res.actions) or bool((getattr(res, "stats", None) or {}).get("changed"))
        unchanged = not changed or data.get("kept") == "original"
        data["output"] = _save(best, args.output, source=args.model if unchanged else None)
    cost_name = "checkpoint's cost model" if args.method == "rl" else args.cost
    lines = [f"{args.method} search on {args.model}: {len(res.actions)} rewrite(s) "
             f"[{', '.join(a['rule'] for a in res.actions) or 'none'}] in {res.time_s:.1f} s",
             f"  cost ({cost_name}): {res.initial_cost:.4f} -> {res.cost:.4f} "
             f"(predicted speed-up {res.predicted_speedup:.3f}x)"]
    if "measured_speedup" in data:
        lines.append(f"  ORT latency ({args.threads} thread(s), ORT_ENABLE_ALL, {data['clock']} clock): "
                     f"{data['original_ms']:.3f} ms -> {data['rewritten_ms']:.3f} ms, measured speed-up "
                     f"{format_speedup(data['measured_speedup'], data['speedup_ci'], data['verdict'])} "
                     f"(A/A noise ±{100 * data['noise_floor']:.1f}%); kept the {data['kept']} graph"
                     + (f" ({data['kept_actions']} of {len(res.actions)} rewrites)" if res.actions else ""))
    if args.output:
        lines.append(f"  wrote {data['output']}")
    return Report(data, "\n".join(lines))


def _baseline_search(original, args: argparse.Namespace):
    """TASO's backtracking search or TENSAT's equality saturation (xflow.rewrites.searches)."""
    from xflow.rewrites.searches import rule_set

    cost = _cost_model(args.cost, args.threads)
    if args.method == "taso":
        from xflow.rewrites.searches.taso import taso_search

        return taso_search(original, cost, rules=rule_set(args.rules or "all"), alpha=args.alpha,
                           budget=args.budget, time_budget_s=args.time_budget_s,
                           max_candidates=args.max_candidates)
    from xflow.rewrites.searches.tensat import tensat_search

    if args.rules not in (None, "generated"):
        from xflow.errors import XflowError

        raise XflowError(f"--rules {args.rules}: tensat takes only the generated rules (rules as data); "
                         "drop --rules or use --rules generated")
    return tensat_search(original, cost, rules=rule_set("generated"), node_limit=args.node_limit,
                         iter_limit=args.iter_limit, time_limit_s=args.time_budget_s or 60.0,
                         k_multi=args.k_multi, extract=args.extract, ilp_time_s=args.ilp_time_s,
                         saturation_share=args.saturation_share)


def _rl_search(original, args: argparse.Namespace):
    """Roll out the PPO policy in ``args.checkpoint`` (horizon and cost model from the checkpoint)."""
    from xflow.errors import XflowError

    if not getattr(args, "checkpoint", None):
        raise XflowError("--search rl needs --checkpoint CKPT (an agent.pt from `xflow rl train`)")
    from xflow.agents.search import rl_search

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


def _add_baseline_options(p: argparse.ArgumentParser) -> None:
    """The rule-set and TASO/TENSAT options that ``rewrite search`` and ``rewrite optimize`` share."""
    p.add_argument("--rules", choices=["generated", "handwritten", "all"], default=None,
                   help="rule set (default: hand-written for greedy/beam/random, all for taso; tensat: generated, "
                        "the only set its e-graph takes)")
    p.add_argument("--node-limit", type=positive_int(10_000_000), default=50_000,
                   help="tensat: e-graph node limit (TENSAT: 50000)")
    p.add_argument("--iter-limit", type=positive_int(10_000), default=15,
                   help="tensat: saturation iterations (TENSAT: 15)")
    p.add_argument("--k-multi", type=int_range(0, 10_000), default=1,
                   help="tensat: iterations with multi-pattern rules (TENSAT --iter_multi)")
    p.add_argument("--extract", choices=["greedy", "ilp"], default="ilp", help="tensat: extraction")
    p.add_argument("--ilp-time-s", type=finite_float(0, lo_open=True), default=60.0,
                   help="tensat: ILP solver time limit, capped by the time left in the budget (falls back to greedy)")
    p.add_argument("--saturation-share", type=finite_float(0.0, 0.9, lo_open=True), default=0.5,
                   help="tensat: share of the time budget saturation may use (the rest: extraction, verification)")


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add ``xflow rewrite {list,rules,apply,search,optimize}``."""
    p = add_command(subparsers, "rewrite", None, help="verified graph rewrite rules and search baselines")
    sub = p.add_subparsers(dest="rewrite_command", metavar="ACTION", required=True)
    for cmd, hlp in (("list", "list the rewrite rules"), ("rules", "list the rewrite rules (alias of list)")):
        lp = add_command(sub, cmd, _cmd_list, help=hlp)
        lp.add_argument("--generated", action="store_true",
                        help="list the verified generated rules (provenance, verification evidence)")
        lp.add_argument("--rules-file", default=None, help="a generated rule set other than the committed one")
    gp = add_command(sub, "generate", _cmd_generate,
                     help="generate rules the TASO way (enumerate, fingerprint, prune, verify); minutes")
    gp.add_argument("--max-ops", type=int, default=3, help="operators per graph (TASO: 3-4)")
    gp.add_argument("--domain", action="append", choices=["matrix", "image"], help="domains (default: all)")
    gp.add_argument("--seed", type=int, default=0)
    gp.add_argument("--random-envs", type=int, default=2, help="random shape instantiations per candidate")
    gp.add_argument("--z3-timeout-ms", type=int, default=5000)
    gp.add_argument("--out", default=None, help="output JSON (default: xflow/rewrites/generated/rules.json)")
    a = add_command(sub, "apply", _cmd_apply, help="apply one rule to an ONNX file")
    add_onnx_input(a, help="input .onnx file")
    a.add_argument("--rule", required=True, help="rule name (see `xflow rewrite list`)")
    a.add_argument("--all", action="store_true", help="apply repeatedly until the rule no longer matches")
    a.add_argument("--index", type=int_range(0), default=0, help="which match to apply (default: the first)")
    a.add_argument("--max-steps", type=positive_int(1_000_000), default=1000, help="cap on --all applications")
    add_output(a, required=True, suffixes=(".onnx",), help="output .onnx file")
    s = add_command(sub, "search", _cmd_search, help="search rewrite sequences for a cheaper graph")
    add_onnx_input(s, help="input .onnx file")
    s.add_argument("--method", "--search", dest="method",
                   choices=["greedy", "beam", "random", "taso", "tensat"], default="greedy")
    s.add_argument("--budget", type=positive_int(1_000_000), default=20, help="steps (greedy/random) or expansions (beam)")
    s.add_argument("--time-budget-s", type=finite_float(0, lo_open=True), default=None,
                   help="stop after this many seconds")
    s.add_argument("--cost", choices=list(COST_CHOICES), default="nominal",
                   help="cost model (xflow.costs): " + "; ".join(f"{k}: {v}" for k, v in COST_CHOICES.items()))
    s.add_argument("--alpha", type=finite_float(1.0, 100.0), default=1.05,
                   help="beam relaxation (accept cost < alpha * best)")
    s.add_argument("--seed", type=int_range(0), default=0, help="random-walk seed")
    s.add_argument("--max-candidates", type=positive_int(1_000_000), default=500)
    s.add_argument("--measure-points", type=positive_int(1000), default=4,
                   help="trajectory prefixes measured against the input (the significantly fastest is kept)")
    s.add_argument("--threads", type=threads(), default=1, help="ORT intra-op threads for the measurement")
    s.add_argument("--repeats", type=zero_or(int_range(2, 100_000, hint="an interval needs two rounds")), default=20,
                   help="interleaved measurement rounds (0: do not measure; else >= 2)")
    add_output(s, default=None, suffixes=(".onnx",), help="write the faster of input / result here")
    _add_baseline_options(s)

    o = add_command(sub, "optimize", _cmd_optimize,
                    help="search, verify and write the measured-faster of input / result (never slower)")
    add_onnx_input(o, help="input .onnx file")
    add_output(o, required=True, suffixes=(".onnx",), help="output .onnx file")
    o.add_argument("--search", choices=["greedy", "beam", "random", "taso", "tensat", "rl"], default="beam")
    o.add_argument("--budget", type=positive_int(1_000_000), default=30, help="steps (greedy/random) or expansions (beam)")
    o.add_argument("--budget-s", type=finite_float(0, lo_open=True), default=60.0,
                   help="time budget of the search in seconds")
    o.add_argument("--cost", choices=list(COST_CHOICES), default="nominal",
                   help="cost model (xflow.costs): " + "; ".join(f"{k}: {v}" for k, v in COST_CHOICES.items()))
    o.add_argument("--alpha", type=finite_float(1.0, 100.0), default=1.05,
                   help="beam relaxation (accept cost < alpha * best)")
    o.add_argument("--seed", type=int_range(0), default=0, help="random-walk seed")
    o.add_argument("--max-candidates", type=positive_int(1_000_000), default=500)
    o.add_argument("--measure-points", type=positive_int(1000), default=4,
                   help="trajectory prefixes measured against the input (the fastest is kept)")
    o.add_argument("--threads", type=threads(), default=1, help="ORT intra-op threads for the measurement")
    o.add_argument("--repeats", type=zero_or(int_range(2, 100_000, hint="an interval needs two rounds")), default=20,
                   help="interleaved measurement rounds (0: keep the predicted best; else >= 2)")
    o.add_argument("--checkpoint", type=existing_file("checkpoint"), default=None,
                   help="agent.pt of a trained PPO policy (--search rl)")
    _add_baseline_options(o)

    o.add_argument("--horizon", type=positive_int(100_000), default=None,
                   help="--search rl: rollout length (default: the checkpoint's training horizon)")
