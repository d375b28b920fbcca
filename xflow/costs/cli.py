"""``xflow costs …``: the cost layer on the command line.

* ``xflow costs list`` — the cost-model names and what each means;
* ``xflow costs calibrate [--device cpu] [--threads 1] [--rounds 15] [-o FILE] [--refresh]`` —
  measure this machine's roofline profile (one command, one file per device and thread count);
* ``xflow costs show [PROFILE]`` — a profile file (default: this machine's calibrated one, else
  the nominal one);
* ``xflow costs estimate MODEL.onnx [--cost nominal]`` — the cost of a model under a named model.
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


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add ``xflow costs {list,calibrate,show,estimate}``."""
    p = add_command(subparsers, "costs", None, help="cost models: names, device profiles, calibration")
    sub = p.add_subparsers(dest="costs_command", metavar="ACTION", required=True)
    add_command(sub, "list", _cmd_list, help="the cost-model names")
    c = add_command(sub, "calibrate", _cmd_calibrate, help="measure this machine's roofline profile")
    s = add_command(sub, "show", _cmd_show, help="print a device profile")
    s.add_argument("profile", nargs="?", default=None, help="profile JSON (default: this machine's)")
    e = add_command(sub, "estimate", _cmd_estimate, help="cost of an ONNX model under a cost model")
    e.add_argument("model", help="input .onnx file")
    e.add_argument("--cost", choices=list(COST_MODELS), default="nominal")
    for q in (c, s, e):
        q.add_argument("--device", default="cpu", help="cpu or cuda")
        q.add_argument("--threads", type=int, default=1, help="intra-op threads")
    c.add_argument("--rounds", type=int, default=15, help="interleaved measurement rounds")
    c.add_argument("-o", "--output", default=None, help="profile file (default: the cache location)")
    c.add_argument("--refresh", action="store_true", help="re-measure even if the file exists")
