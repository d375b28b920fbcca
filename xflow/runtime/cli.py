"""``xflow latency FILE.onnx``: median/IQR latency of a model in ONNX Runtime.

The file is validated with :func:`xflow.graphs.load_model` first (clean typed errors for missing,
empty, random-byte or invalid files; ``--no-validate`` only parses it), then the file as given is timed.
"""
from __future__ import annotations

import argparse

from xflow.clitools import Report, add_command, add_onnx_input, int_range, positive_int, threads

__all__ = ["register"]


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


def _cmd_latency(args: argparse.Namespace) -> Report:
    from xflow.runtime.device import describe_device
    from xflow.runtime.latency import measure_interleaved

    from xflow.errors import XflowError

    if args.repeats < 1 or args.warmup < 0 or args.threads < 0:
        raise XflowError("--repeats must be >= 1, --warmup and --threads >= 0")
    _validate(args.model, full=not args.no_validate)
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
    p = add_command(sub, "latency", _cmd_latency, help="measure a model's latency in ONNX Runtime")
    add_onnx_input(p, help="ONNX file")
    p.add_argument("--level", action="append", choices=["disable", "basic", "extended", "all"],
                   help="ORT graph optimization level (repeat to compare levels, interleaved; default all)")
    p.add_argument("--threads", type=threads(allow_zero=True), default=1, help="intra-op threads (default 1; 0 = all cores)")
    p.add_argument("--mode", choices=["sequential", "parallel"], default="sequential",
                   help="ORT execution mode")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="execution provider")
    p.add_argument("--repeats", type=positive_int(100_000), default=30, help="timed runs (default 30)")
    p.add_argument("--warmup", type=int_range(0, 100_000), default=5, help="untimed warm-up runs (default 5)")
    p.add_argument("--no-validate", action="store_true",
                   help="only parse the file instead of the full xflow.graphs.load_model check "
                        "(checker, shape inference, folding: slow for very large models)")
