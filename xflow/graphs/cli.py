"""``xflow zoo list|export`` and ``xflow render``: the model zoo and graph rendering on the command line.

Heavy imports (torch, onnx) happen inside the handlers so ``xflow --help`` stays fast.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from xflow.clitools import Report, add_command, add_output, int_range, positive_int
from xflow.errors import XflowError
from xflow.graphs.model_args import add_onnx_input

__all__ = ["register", "parse_cfg"]


def parse_cfg(items: list[str] | None) -> dict[str, Any]:
    """``['seq=128', 'layers=4']`` → ``{'seq': '128', 'layers': '4'}`` (the zoo casts the values)."""
    cfg: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise XflowError(f"--cfg expects KEY=VALUE, got {item!r}")
        cfg[key.strip()] = value.strip()
    return cfg


def _cmd_zoo_list(args: argparse.Namespace) -> Report:
    from xflow.graphs import zoo

    models = [zoo.describe(n) for n in zoo.list_models(tag=args.tag)]
    width = max(len(m["name"]) for m in models)
    lines = []
    for m in models:
        cfg = " ".join(f"{k}={v}" for k, v in m["defaults"].items())
        lines.append(f"{m['name']:<{width}}  {m['description']}\n{'':<{width}}  [{cfg}] "
                     f"used by: {', '.join(m['tags']) or '-'}")
    return Report({"models": models}, "\n".join(lines))


def _cmd_zoo_export(args: argparse.Namespace) -> Report:
    from xflow.graphs import zoo

    from xflow.safeio import atomic_copy, same_file

    cfg = parse_cfg(args.cfg)
    if args.batch < 1:
        raise XflowError(f"--batch must be >= 1, got {args.batch}")
    cached = zoo.export(args.name, args.batch, **cfg)
    out = Path(args.output) if args.output else cached
    if not same_file(out, cached):
        atomic_copy(cached, out)
    data = {"name": args.name, "batch": args.batch, "config": zoo.resolve_config(args.name, **cfg),
            "path": str(out), "cache_path": str(cached), "bytes": out.stat().st_size}
    return Report(data, f"{args.name} (batch {args.batch}) → {out} ({data['bytes'] / 1e6:.1f} MB)")


def _cmd_render(args: argparse.Namespace) -> Report:
    try:
        from xflow.graphs import load_model, render
    except (ImportError, ModuleNotFoundError) as exc:  # pragma: no cover - graph core not in this checkout
        raise XflowError(f"rendering is not available in this checkout ({exc})") from None

    g = load_model(args.model)
    out = Path(args.output)
    highlight = tuple(args.highlight or ())
    path = render(g, out, highlight=highlight, around=args.around, radius=args.radius)
    path = Path(path) if path else out
    data = {"model": str(args.model), "path": str(path), "nodes": len(g.nodes), "around": args.around,
            "radius": args.radius if args.around else None}
    return Report(data, f"rendered {len(g.nodes)}-node graph → {path}")


def register(sub: "argparse._SubParsersAction") -> None:
    """Add ``xflow zoo list``, ``xflow zoo export`` and ``xflow render``."""
    p = add_command(sub, "zoo", None, help="the model zoo: list models, export one to ONNX")
    zsub = p.add_subparsers(dest="zoo_command", metavar="ACTION", required=True)
    lst = add_command(zsub, "list", _cmd_zoo_list, help="list zoo models with their default configs")
    lst.add_argument("--tag", default=None, help="only models a technique uses (rewrites, rl, algsel, parallel, runtime)")
    e = add_command(zsub, "export", _cmd_zoo_export,
                    help="export a zoo model to ONNX (cached, checked against torch)")
    e.add_argument("name", help="zoo model name (see `xflow zoo list`)")
    e.add_argument("--batch", type=positive_int(4096), default=1, help="batch size (default 1)")
    e.add_argument("--cfg", action="append", metavar="KEY=VALUE",
                   help="config override, repeatable (e.g. --cfg image_size=112 --cfg seq=128)")
    add_output(e, inputs=(), suffixes=(".onnx",), help="where to write the .onnx (default: print the cache path)")

    r = add_command(sub, "render", _cmd_render, help="render an ONNX graph with graphviz (svg/png by suffix)")
    add_onnx_input(r, help="ONNX file")
    add_output(r, required=True, suffixes=(".svg", ".png", ".pdf"), help="output file, .svg, .png or .pdf")
    r.add_argument("--around", metavar="NODE", help="render only the neighbourhood of this node")
    r.add_argument("--radius", type=int_range(0, 100), default=2, help="neighbourhood radius in hops (default 2)")
    r.add_argument("--highlight", action="append", metavar="NODE", help="node to highlight, repeatable")
