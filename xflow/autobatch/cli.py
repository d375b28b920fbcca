"""``xflow autobatch`` subcommands: ``bench`` (throughput of one strategy vs eager and hand-batched)
and ``plan`` (how a minibatch of graphs groups into batches under a strategy).

Heavy imports (torch, the models) happen inside the handlers so ``xflow --help`` stays fast.
"""
from __future__ import annotations

import argparse

from xflow.clitools import Report, add_command, name_list, positive_int, threads

__all__ = ["register"]

_MODELS = ("bilstm", "bilstm-char", "treelstm", "parser")
_STRATEGIES = ("none", "depth", "agenda", "agenda-level", "auto")


def _rounds(v: str) -> int:
    """``--rounds``: an interval needs at least two rounds."""
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {v!r}") from None
    if n < 2:
        raise argparse.ArgumentTypeError(f"must be >= 2 (an interval needs two rounds), got {n}")
    return n


def _bench(args: argparse.Namespace) -> Report:
    from .bench import default_config, parse_impl, run

    impls = [s.strip() for s in args.baselines.split(",") if s.strip()] if args.baselines else []
    impls = list(dict.fromkeys(impls + [args.strategy]))
    for impl in impls:
        parse_impl(impl)
    cfg = default_config(args.model, quick=args.quick, impls=impls, threads=args.threads, phases=False,
                         baseline=args.strategy)
    if args.batch is not None:
        cfg["batch"] = args.batch
    if args.rounds is not None:
        cfg["rounds"] = args.rounds
    if args.mode != "both":
        cfg["modes"] = [args.mode]
    if args.dynet:
        from .dynet_peer import dynet_available, run_dynet

        if not dynet_available():
            from xflow.errors import XflowError

            raise XflowError("--dynet needs DyNet: pip install dynet38 (the 'peers' extra)")
        records = run_dynet(cfg, 1)
    else:
        records = run(cfg)
    data: dict = {"model": args.model, "strategy": args.strategy, "batch": cfg["batch"], "preset": cfg["preset"],
                  "threads": cfg["threads"], "rounds": cfg["rounds"], "results": {}, "comparisons": []}
    unit = records[0].get("unit", "examples") if records else "examples"
    lines = [f"autobatch bench: model={args.model} batch={cfg['batch']} preset={cfg['preset']} "
             f"threads={cfg['threads']} ({cfg['rounds']} interleaved rounds; thread CPU time decides)"]
    for r in records:
        if r["metric"] == "time_ms" and not r.get("is_aa_control"):
            key = f"{r['variant']}/{r['mode']}"
            data["results"][key] = {"throughput": r["throughput"], "time_ms": r["value"], "wall_ms": r["wall_ms"],
                                    "ratio_to_baseline": r["ratio"], "ci": [r["ci_lo"], r["ci_hi"]],
                                    "verdict": r["verdict"], "noise_floor": r["noise_floor"]}
            lines.append(f"  {key:22s} {r['throughput']:9.1f} {unit}/s  (median {r['value']:.1f} ms thread CPU, "
                         f"{r['wall_ms']:.1f} ms wall)")
        elif r["metric"] == "speedup":
            data["comparisons"].append({"a": r["a"], "b": r["b"], "mode": r["mode"], "speedup": r["value"],
                                        "ci": [r["lo"], r["hi"]], "verdict": r["verdict"], "clock": r["clock"]})
            lines.append(f"  {r['a']} vs {r['b']} ({r['mode']}): {r['text']}")
        elif r["metric"] == "warning":
            lines.append(f"  note: {r['text']}")
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


def _impl_list(text: str) -> str:
    """``--baselines``: comma-separated implementation names, each checked at parse time."""
    from xflow.errors import UnknownName

    from .bench import parse_impl

    bad = []
    for name in [t.strip() for t in text.split(",") if t.strip()]:
        try:
            parse_impl(name)
        except UnknownName:
            bad.append(name)
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown name(s) {', '.join(map(repr, bad))}; use eager, hand, a strategy "
            "(none, depth, agenda) or a strategy ending in -unfused")
    return text


_impl_list.__name__ = "implementation list"


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
    b.add_argument("--baselines", type=_impl_list, default="eager,hand",
                   help="comma-separated implementations measured in the same run (eager, hand, a strategy, "
                        "a strategy with -unfused)")
    b.add_argument("--mode", choices=("train", "infer", "both"), default="both")
    b.add_argument("--rounds", "--repeats", dest="rounds", type=_rounds, default=None,
                   help="interleaved measurement rounds (>= 2; default 5 quick, 10 full)")
    b.add_argument("--dynet", action="store_true", help="measure DyNet (autobatch on) in the same run")
    b.add_argument("--threads", type=threads(), default=1, help="torch intra-op threads (default 1)")
    b.add_argument("--quick", action="store_true", help="small model dimensions and few repeats")
    q = add_command(sub, "plan", _plan, help="how a minibatch groups into batches under a strategy")
    q.add_argument("--model", choices=_MODELS, default="treelstm")
    q.add_argument("--strategy", choices=_STRATEGIES, default="agenda")
    q.add_argument("--batch", type=positive_int(4096, hint="larger minibatches need many GB of memory"), default=8,
                   help="examples in the minibatch")
