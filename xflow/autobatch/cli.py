"""``xflow autobatch`` subcommands: ``bench`` (throughput of one strategy vs eager and hand-batched)
and ``plan`` (how a minibatch of graphs groups into batches under a strategy).

Heavy imports (torch, the models) happen inside the handlers so ``xflow --help`` stays fast.
"""
from __future__ import annotations

import argparse

from xflow.clitools import Report, add_command, name_list, positive_int, threads

__all__ = ["register"]

_MODELS = ("bilstm", "bilstm-char", "treelstm")
_STRATEGIES = ("none", "depth", "agenda")


def _bench(args: argparse.Namespace) -> Report:
    from .bench import default_config, run

    impls = [s.strip() for s in args.baselines.split(",") if s.strip()] if args.baselines else []
    impls = list(dict.fromkeys(impls + [args.strategy]))
    cfg = default_config(args.model, quick=args.quick, impls=impls, threads=args.threads)
    if args.batch is not None:
        cfg["batch"] = args.batch
    if args.repeats is not None:
        cfg["repeats"] = args.repeats
    if args.mode != "both":
        cfg["modes"] = [args.mode]
    records = run(cfg)
    data: dict = {"model": args.model, "strategy": args.strategy, "batch": cfg["batch"], "preset": cfg["preset"],
                  "threads": cfg["threads"], "results": {}}
    lines = [f"autobatch bench: model={args.model} batch={cfg['batch']} preset={cfg['preset']} "
             f"threads={cfg['threads']} (median of {cfg['repeats']})"]
    for r in records:
        key = f"{r['impl']}/{r['mode']}"
        data["results"].setdefault(key, {})[r["metric"]] = r["value"]
    unit = records[0]["unit"] if records else "examples"
    for key, m in sorted(data["results"].items()):
        line = f"  {key:14s} {m['throughput']:9.1f} {unit}/s"
        if "speedup_vs_eager" in m:
            line += f"  x{m['speedup_vs_eager']:.2f} vs eager"
        if "ratio_to_hand" in m:
            line += f"  hand is x{m['ratio_to_hand']:.2f}"
        if "schedule_frac" in m:
            line += f"  construct {m['construct_frac']:.0%} schedule {m['schedule_frac']:.0%}"
        lines.append(line)
    return Report(data=data, text="\n".join(lines))


def _plan(args: argparse.Namespace) -> Report:
    import torch

    from .bench import PRESETS
    from .models import get_model
    from .viz import record_examples, schedule_table

    torch.manual_seed(0)
    model = get_model(args.model, **PRESETS["quick"][args.model])
    batch = model.make_data(args.batch, seed=1)
    g, example_of = record_examples(model, batch, args.strategy)
    rows = schedule_table(g, example_of)
    sizes = [len(grp) for plan in g.plans for grp in plan]
    per_op: dict[str, list[int]] = {}
    for plan in g.plans:
        for grp in plan:
            per_op.setdefault(g.op[grp[0]], []).append(len(grp))
    data = {"model": args.model, "strategy": args.strategy, "examples": args.batch, "nodes": len(g),
            "executed": len(rows), "batches": len(sizes), "signatures": len(g.sig_keys),
            "mean_batch": sum(sizes) / max(len(sizes), 1),
            "per_op": {op: {"batches": len(v), "nodes": sum(v)} for op, v in sorted(per_op.items())}}
    lines = [f"{args.model} x{args.batch}, strategy {args.strategy}: {len(rows)} nodes -> {len(sizes)} batches "
             f"(mean {data['mean_batch']:.1f} nodes/batch, {len(g.sig_keys)} signatures)"]
    for op, v in sorted(per_op.items()):
        lines.append(f"  {op:15s} {sum(v):6d} nodes in {len(v):5d} batches")
    return Report(data=data, text="\n".join(lines))


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add ``xflow autobatch bench|plan``."""
    p = subparsers.add_parser("autobatch", help="on-the-fly operation autobatching (DyNet-style)",
                              description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="autobatch_command", metavar="SUBCOMMAND")
    b = add_command(sub, "bench", _bench, help="training/inference throughput of a strategy vs baselines")
    b.add_argument("--model", choices=_MODELS, default="bilstm")
    b.add_argument("--strategy", choices=_STRATEGIES, default="agenda")
    b.add_argument("--batch", type=positive_int(4096, hint="larger minibatches need many GB of memory"), default=None,
                   help="minibatch size (default 64, quick 32)")
    b.add_argument("--baselines", type=name_list(("eager", "none", "depth", "agenda", "hand"), min_items=0),
                   default="eager,hand",
                   help="comma-separated implementations measured in the same run (eager,none,depth,agenda,hand)")
    b.add_argument("--mode", choices=("train", "infer", "both"), default="both")
    b.add_argument("--repeats", type=positive_int(10_000), default=None, help="timed rounds (default 5, quick 3)")
    b.add_argument("--threads", type=threads(), default=1, help="torch intra-op threads (default 1)")
    b.add_argument("--quick", action="store_true", help="small model dimensions and few repeats")
    q = add_command(sub, "plan", _plan, help="how a minibatch groups into batches under a strategy")
    q.add_argument("--model", choices=_MODELS, default="treelstm")
    q.add_argument("--strategy", choices=_STRATEGIES, default="agenda")
    q.add_argument("--batch", type=positive_int(4096, hint="larger minibatches need many GB of memory"), default=8,
                   help="examples in the minibatch")
