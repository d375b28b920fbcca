"""``xflow costs …``: the cost layer on the command line.

* ``xflow costs list`` — the cost-model names and what each means;
* ``xflow costs calibrate [--device cpu] [--threads 1] [--rounds 15] [-o FILE] [--refresh]`` —
  measure this machine's roofline profile (one command, one file per device and thread count);
* ``xflow costs show [PROFILE]`` — a profile file (default: this machine's calibrated one, else
  the nominal one);
* ``xflow costs estimate MODEL.onnx [--cost nominal]`` — the cost of a model under a named model;
* ``xflow costs context MODEL [--top 15]`` — every op configuration of the graph ORT runs for
  ``MODEL`` (an id: ``zoo:nasrnn``, ``file:m.onnx``), its time alone (``ort``) and inside the
  graph (``ort-context``), slowest in the graph first.
"""
from __future__ import annotations

import argparse

from xflow.clitools import Report, add_command
from xflow.costs.names import COST_MODELS

__all__ = ["register"]


def _cmd_list(args: argparse.Namespace) -> Report:
    text = "\n".join(f"{k:<13} {v}" for k, v in COST_MODELS.items())
    return Report({"cost_models": dict(COST_MODELS)}, text)


def _cmd_calibrate(args: argparse.Namespace) -> Report:
    from xflow.costs.calibration import calibrate
    from xflow.costs.profiles import calibrated_path

    path = args.output or calibrated_path(args.device, args.threads)
    prof = calibrate(args.device, threads=args.threads, rounds=args.rounds, path=path, refresh=args.refresh)
    return Report({"path": str(path), "profile": prof.as_dict()}, f"{prof!r}\nwrote {path}")


def _cmd_show(args: argparse.Namespace) -> Report:
    from xflow.costs.profiles import calibrated_path, nominal, read_profile

    if args.profile:
        prof, where = read_profile(args.profile), args.profile
    else:
        path = calibrated_path(args.device, args.threads)
        prof, where = (read_profile(path), str(path)) if path.exists() else (nominal(args.device), "nominal")
    return Report({"source": str(where), "profile": prof.as_dict()}, f"{prof!r} ({where})")


def _cmd_estimate(args: argparse.Namespace) -> Report:
    from xflow.costs.registry import make_cost_model
    from xflow.graphs.model import load_model

    g = load_model(args.model)
    cm = make_cost_model(args.cost, device=args.device, threads=args.threads)
    ms = cm.cost(g)
    return Report({"model": args.model, "cost": args.cost, "ms": ms, "nodes": len(g.nodes)},
                  f"{args.model}: {ms:.4f} ms under {args.cost} ({len(g.nodes)} nodes)")


def _cmd_context(args: argparse.Namespace) -> Report:
    from xflow.costs.ort_context import OrtContextCost, configurations
    from xflow.costs.ort_optimized import OrtOptimizedCost
    from xflow.graphs.model_ids import resolve_graph

    g = resolve_graph(args.model)
    rows = configurations([g], [args.model], alone=OrtOptimizedCost(threads=args.threads, device=args.device),
                          context=OrtContextCost(threads=args.threads, device=args.device))
    shown = rows[: args.top] if args.top > 0 else rows
    total = {k: sum(r[k] * r["nodes"] for r in rows) for k in ("alone_ms", "context_ms")}
    lines = [f"{'op':<12} {'inputs':<34} {'nodes':>5} {'alone':>10} {'in graph':>10}  ratio"]
    for r in shown:
        ratio = "—" if r["alone_ms"] <= 0 else f"{r['context_over_alone']:.2f}x"
        lines.append(f"{r['op']:<12} {r['inputs'][:34]:<34} {r['nodes']:>5} {1000 * r['alone_ms']:8.1f}us "
                     f"{1000 * r['context_ms']:8.1f}us  {ratio}")
    lines.append(f"graph: {total['alone_ms']:.3f} ms alone (ort), {total['context_ms']:.3f} ms in the graph "
                 f"(ort-context); {len(rows)} configurations, {len(shown)} shown")
    return Report({"model": args.model, "ort_ms": total["alone_ms"], "ort_context_ms": total["context_ms"],
                   "configurations": rows}, "\n".join(lines))  # the CLI nulls a ratio without a time alone


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add ``xflow costs {list,calibrate,show,estimate,context}``."""
    p = add_command(subparsers, "costs", None, help="cost models: names, device profiles, calibration")
    sub = p.add_subparsers(dest="costs_command", metavar="ACTION", required=True)
    add_command(sub, "list", _cmd_list, help="the cost-model names")
    c = add_command(sub, "calibrate", _cmd_calibrate, help="measure this machine's roofline profile")
    s = add_command(sub, "show", _cmd_show, help="print a device profile")
    s.add_argument("profile", nargs="?", default=None, help="profile JSON (default: this machine's)")
    e = add_command(sub, "estimate", _cmd_estimate, help="cost of an ONNX model under a cost model")
    e.add_argument("model", help="input .onnx file")
    e.add_argument("--cost", choices=list(COST_MODELS), default="nominal")
    x = add_command(sub, "context", _cmd_context,
                    help="per op configuration: time alone (ort) and inside the graph (ort-context)")
    x.add_argument("model", help="model id (zoo:nasrnn, file:model.onnx, ...)")
    x.add_argument("--top", type=int, default=15, help="configurations shown (0: all; --json has all)")
    for q in (c, s, e, x):
        q.add_argument("--device", default="cpu", help="cpu or cuda")
        q.add_argument("--threads", type=int, default=1, help="intra-op threads")
    c.add_argument("--rounds", type=int, default=15, help="interleaved measurement rounds")
    c.add_argument("-o", "--output", default=None, help="profile file (default: the cache location)")
    c.add_argument("--refresh", action="store_true", help="re-measure even if the file exists")
