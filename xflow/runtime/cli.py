"""``xflow latency FILE.onnx``: median/IQR latency of a model in ONNX Runtime or another backend.

The file is validated with :func:`xflow.graphs.load_model` first (clean typed errors for missing,
empty, random-byte or invalid files; ``--no-validate`` only parses it), then the file as given is timed.
``--backend torch`` / ``torch-cuda`` time the model lowered to generated PyTorch code
(:mod:`xflow.runtime.backend`); its outputs are checked against ONNX Runtime first, and ONNX
Runtime with the same thread count is measured beside it (ratio with interval and verdict).
"""
from __future__ import annotations

import argparse

from xflow.clitools import Report, add_command

__all__ = ["register", "CLI_BACKENDS"]

#: ``xflow.runtime.backend.BACKENDS``, spelled out so that ``xflow --help`` imports nothing heavy
#: (a test checks that the two agree).
CLI_BACKENDS = ("ort", "torch", "torch-cuda")


def _validate(path: str, full: bool = True) -> None:
    if not full:
        from xflow.graphs.model import read_model

        read_model(path)
        return
    try:
        from xflow.graphs.model import load_model
    except ModuleNotFoundError:  # pragma: no cover - graph core not in this checkout
        from xflow.runtime.session import as_model_proto

        as_model_proto(path)
        return
    load_model(path)


def _backend_latency(args: argparse.Namespace) -> Report:
    """Time ``args.model`` on a torch backend beside ONNX Runtime (same threads), after checking
    its outputs against ONNX Runtime."""
    from xflow.errors import RewriteVerificationError, XflowError
    from xflow.runtime.backend import make_backend_session
    from xflow.runtime.device import describe_device
    from xflow.runtime.equivalence import compare_arrays
    from xflow.runtime.measure import measure
    from xflow.runtime.session import random_inputs

    if args.level or args.mode != "sequential" or args.device != "cpu":
        raise XflowError(f"--level, --mode and --device apply to --backend ort only; for a GPU use "
                         f"--backend torch-cuda (got --backend {args.backend})")
    threads = args.threads
    sess = make_backend_session(args.model, args.backend, threads=threads)
    twin = make_backend_session(args.model, args.backend, threads=threads)  # A/A control: an independent copy
    feeds = random_inputs(args.model, seed=0)
    data: dict = {"model": str(args.model), "backend": args.backend, "threads": threads, "warmup": args.warmup,
                  "repeats": args.repeats, "lowering": sess.describe()}
    lines = []
    if not args.no_check:
        ref = make_backend_session(args.model, "ort", threads=threads, level="disable")
        diffs = compare_arrays(sess.run(feeds), ref.run(feeds), [o.name for o in ref.outputs])
        bad = [d for d in diffs if not d.ok]
        data["check"] = {"ok": not bad, "max_abs_err": max((d.max_abs_err for d in diffs), default=0.0)}
        if bad:
            raise RewriteVerificationError(f"backend {args.backend} disagrees with ONNX Runtime at output "
                                           f"{bad[0].name!r}: {bad[0].reason}")
        lines.append(f"outputs match ONNX Runtime (max |diff| {data['check']['max_abs_err']:.2g})")
    variants = {args.backend: sess.variant(feeds)}
    if not args.no_reference:
        variants["ort"] = make_backend_session(args.model, "ort", threads=threads).variant(feeds)
    m = measure(variants, baseline=args.backend, aa=twin.variant(feeds), warmup=args.warmup,
                rounds=args.repeats)
    info = describe_device("cpu")
    data.update({"device_label": info.label(), "clock": m.clock, "noise_floor": m.noise_floor(),
                 "conditions": m.conditions(), "warnings": list(m.warnings),
                 "variants": {n: {"median_ms": m.median_ms(n), "iqr_ms": m.iqr_ms(n),
                                  "wall_ms": m.median_ms(n, "wall")} for n in m.names}})
    lines.insert(0, f"{args.model} on {info.label()} [{args.backend}], {threads} thread(s), {args.repeats} rounds "
                    f"({m.clock} clock; median ± IQR):")
    for n in m.names:
        lines.append(f"  {n:<12} {m.median_ms(n):9.3f} ms  ± {m.iqr_ms(n):.3f}")
    if "ort" in variants and m.rounds >= 2:
        c = m.compare("ort")
        data["ort_vs_backend"] = c.as_dict()
        lines.append(f"  ort vs {args.backend}: {c.format()} (speed-up of ONNX Runtime over the backend; "
                     f"noise floor ±{c.noise_floor:.1%})")
    lines += [f"  warning: {w}" for w in m.warnings]
    return Report(data, "\n".join(lines))


def _cmd_latency(args: argparse.Namespace) -> Report:
    from xflow.runtime.device import describe_device
    from xflow.runtime.latency import measure_interleaved

    from xflow.errors import XflowError

    if args.repeats < 1 or args.warmup < 0 or args.threads < 0:
        raise XflowError("--repeats must be >= 1, --warmup and --threads >= 0")
    _validate(args.model, full=not args.no_validate)
    if args.backend != "ort":
        return _backend_latency(args)
    model = args.model
    levels = args.level or ["all"]
    variants = {
        lv: (model, dict(level=lv, intra_threads=args.threads, inter_threads=1, mode=args.mode,
                              device=args.device))
        for lv in dict.fromkeys(levels)
    }
    res = measure_interleaved(variants, warmup=args.warmup, repeats=args.repeats)
    info = describe_device(args.device)
    data = {
        "model": str(args.model), "device": args.device, "device_label": info.label(),
        "threads": args.threads, "mode": args.mode, "warmup": args.warmup, "repeats": args.repeats,
        "levels": {lv: s.as_dict() for lv, s in res.items()},
    }
    lines = [f"{args.model} on {info.label()} [{args.device}], {args.threads} thread(s), "
             f"{args.repeats} repeats (median ± IQR):"]
    for lv, s in res.items():
        lines.append(f"  level={lv:<8} {s.median_ms:9.3f} ms  ± {s.iqr_ms:.3f}  (min {s.min_ms:.3f})")
    if len(res) > 1 and "disable" in res:
        base = res["disable"].median_ms
        for lv, s in res.items():
            if lv != "disable":
                lines.append(f"  {lv} / disable = {s.median_ms / base:.3f}")
    return Report(data, "\n".join(lines))


def register(sub: "argparse._SubParsersAction") -> None:
    """Add ``xflow latency``."""
    p = add_command(sub, "latency", _cmd_latency, help="measure a model's latency in ONNX Runtime or another backend")
    p.add_argument("model", help="ONNX file")
    p.add_argument("--backend", choices=CLI_BACKENDS, default="ort",
                   help="ort (ONNX Runtime, default), torch (generated PyTorch code, CPU) or torch-cuda")
    p.add_argument("--no-check", action="store_true",
                   help="torch backends: skip the output check against ONNX Runtime")
    p.add_argument("--no-reference", action="store_true",
                   help="torch backends: do not time ONNX Runtime beside the backend")
    p.add_argument("--level", action="append", choices=["disable", "basic", "extended", "all"],
                   help="ORT graph optimization level (repeat to compare levels, interleaved; default all)")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1; 0 = all cores)")
    p.add_argument("--mode", choices=["sequential", "parallel"], default="sequential",
                   help="ORT execution mode")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="execution provider")
    p.add_argument("--repeats", type=int, default=30, help="timed runs (default 30)")
    p.add_argument("--warmup", type=int, default=5, help="untimed warm-up runs (default 5)")
    p.add_argument("--no-validate", action="store_true",
                   help="only parse the file instead of the full xflow.graphs.load_model check "
                        "(checker, shape inference, folding: slow for very large models)")
