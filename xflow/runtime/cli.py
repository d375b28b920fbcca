"""``xflow latency FILE.onnx`` and ``xflow compare A.onnx B.onnx``: timings through the measurement
core, every ratio with its interval and verdict, on ONNX Runtime or another backend.

Files are validated with :func:`xflow.graphs.load_model` first (clean typed errors for missing,
empty, random-byte or invalid files; ``--no-validate`` only parses them), then the files as given
are timed. ``--backend torch`` / ``torch-cuda`` run the models lowered to generated PyTorch code
(:mod:`xflow.runtime.backend`): ``latency`` checks the outputs against ONNX Runtime first and
times ONNX Runtime (same threads) beside the backend; ``compare`` checks B on the backend against
A in ONNX Runtime and times both models on the backend.
"""
from __future__ import annotations

import argparse
from typing import Any

from xflow.clitools import Report, add_command, finite_float, int_range, threads
from xflow.errors import XflowError
from xflow.graphs.model_args import add_onnx_input

__all__ = ["register", "CLI_BACKENDS"]

#: ``xflow.runtime.backend.BACKENDS``, spelled out so that ``xflow --help`` imports nothing heavy
#: (a test checks that the two agree).
CLI_BACKENDS = ("ort", "torch", "torch-cuda")


def _validate(path: str, full: bool = True) -> None:
    from xflow.graphs.model import load_model, read_model

    if full:
        load_model(path)
    else:
        read_model(path)


def _check_counts(args: argparse.Namespace) -> None:
    if args.repeats < 2 or args.warmup < 0 or args.threads < 0:
        raise XflowError("--repeats must be >= 2 (an interval needs two rounds), --warmup and --threads >= 0")


def _check_backend_flags(args: argparse.Namespace, has_mode: bool) -> None:
    if args.backend == "ort":
        return
    if args.level or (has_mode and args.mode != "sequential") or args.device != "cpu":
        raise XflowError(f"--level, --mode and --device apply to --backend ort only; for a GPU use "
                         f"--backend torch-cuda (got --backend {args.backend})")


def _backend_latency(args: argparse.Namespace) -> Report:
    """Time ``args.model`` on a torch backend beside ONNX Runtime (same threads), after checking
    its outputs against ONNX Runtime."""
    from xflow.errors import RewriteVerificationError
    from xflow.runtime.backend import make_backend_session
    from xflow.runtime.device import describe_device
    from xflow.runtime.equivalence import compare_arrays
    from xflow.runtime.measure import measure
    from xflow.runtime.session import random_inputs

    threads = args.threads
    sess = make_backend_session(args.model, args.backend, threads=threads)
    twin = make_backend_session(args.model, args.backend, threads=threads)  # A/A control: an independent copy
    feeds = random_inputs(args.model, seed=0)
    data: dict[str, Any] = {"model": str(args.model), "backend": args.backend, "threads": threads,
                            "warmup": args.warmup, "repeats": args.repeats, "lowering": sess.describe()}
    lines = []
    if not args.no_check:
        ref = make_backend_session(args.model, "ort", threads=threads, level="disable")
        diffs = compare_arrays(sess.run(feeds), ref.run(feeds), [o.name for o in ref.outputs])
        bad = [d for d in diffs if not d.ok]
        data["check"] = {"ok": not bad, "max_abs_err": max((d.max_abs_err for d in diffs), default=0.0)}
        if bad:
            raise RewriteVerificationError(f"backend {args.backend} disagrees with ONNX Runtime at output "
                                           f"{bad[0].name!r}: {bad[0].reason}")
        lines.append(f"  outputs match ONNX Runtime (max |diff| {data['check']['max_abs_err']:.2g})")
    variants = {args.backend: sess.variant(feeds)}
    if not args.no_reference:
        variants["ort"] = make_backend_session(args.model, "ort", threads=threads).variant(feeds)
    m = measure(variants, baseline=args.backend, aa=twin.variant(feeds), warmup=args.warmup,
                rounds=args.repeats)
    info = describe_device("cpu")
    data.update({"device_label": info.label(), "clock": m.clock, "noise_floor": m.noise_floor(),
                 "conditions": m.conditions(), "warnings": list(m.warnings),
                 "variants": {n: {"median_ms": m.median_ms(n), "iqr_ms": m.iqr_ms(n),
                                  "wall_ms": m.median_ms(n, "wall"), "thread_cpu_ms": m.median_ms(n, "thread")}
                              for n in m.names}})
    lines.insert(0, f"{args.model} on {info.label()} [{args.backend}], {threads} thread(s), {m.rounds} "
                    f"interleaved rounds, {m.clock} clock (median ± IQR):")
    for n in m.names:
        lines.append(f"  {n:<12} {m.median_ms(n):9.3f} ms  ± {m.iqr_ms(n):.3f}")
    if "ort" in variants:
        c = m.compare("ort")
        data["ort_vs_backend"] = c.as_dict()
        lines.append(f"  ort vs {args.backend}: speed-up {c.format()} (ONNX Runtime over the backend)")
    lines.append(f"  A/A noise floor ±{100 * m.noise_floor():.1f}%")
    lines += [f"  warning: {w}" for w in m.warnings]
    return Report(data, "\n".join(lines))


def _cmd_latency(args: argparse.Namespace) -> Report:
    from xflow.runtime.device import describe_device
    from xflow.runtime.latency import measure_models

    _check_counts(args)
    _check_backend_flags(args, has_mode=True)
    _validate(args.model, full=not args.no_validate)
    if args.backend != "ort":
        return _backend_latency(args)
    levels = list(dict.fromkeys(args.level or ["all"]))
    variants = {
        lv: (args.model, dict(level=lv, intra_threads=args.threads, inter_threads=1, mode=args.mode,
                              device=args.device))
        for lv in levels
    }
    base = "disable" if "disable" in variants else levels[0]
    m = measure_models(variants, baseline=base, warmup=args.warmup, rounds=args.repeats)
    info = describe_device(args.device)
    cmps = {lv: m.compare(lv) for lv in levels if lv != base}
    data: dict[str, Any] = {
        "model": str(args.model), "device": args.device, "device_label": info.label(),
        "threads": args.threads, "mode": args.mode, "warmup": args.warmup, "repeats": args.repeats,
        "baseline": base, "noise_floor": m.noise_floor(), "conditions": m.conditions(),
        "levels": {lv: {"median_ms": m.median_ms(lv), "iqr_ms": m.iqr_ms(lv),
                        "wall_ms": m.median_ms(lv, "wall"), "thread_cpu_ms": m.median_ms(lv, "thread"),
                        "min_ms": float(m.times(lv).min() * 1e3), "max_ms": float(m.times(lv).max() * 1e3),
                        "repeats": m.rounds} for lv in levels},
        "comparisons": {lv: c.as_dict() for lv, c in cmps.items()},
        "warnings": m.warnings,
    }
    lines = [f"{args.model} on {info.label()} [{args.device}], {args.threads} thread(s), "
             f"{m.rounds} interleaved rounds, {m.clock} clock (median ± IQR):"]
    for lv in levels:
        lines.append(f"  level={lv:<8} {m.median_ms(lv):9.3f} ms  ± {m.iqr_ms(lv):.3f}")
    for lv, c in cmps.items():
        lines.append(f"  level={lv} vs {base}: speed-up {c.format()}")
    lines.append(f"  A/A noise floor ±{100 * m.noise_floor():.1f}%")
    lines += [f"  warning: {w}" for w in m.warnings]
    return Report(data, "\n".join(lines))


def _cmd_compare(args: argparse.Namespace) -> Report:
    from xflow.runtime.equivalence import compare_outputs
    from xflow.runtime.latency import measure_models

    _check_counts(args)
    if args.min_effect < 0 or args.min_effect != args.min_effect:
        raise XflowError("--min-effect must be a number >= 0 (e.g. 0.02 for 2 %)")
    levels = args.level or ["all"]
    if len(levels) > 2:
        raise XflowError("--level takes one value (both models) or two (A's, then B's)")
    lv_a, lv_b = levels[0], levels[-1]
    _check_backend_flags(args, has_mode=False)
    for p in (args.a, args.b):
        _validate(p, full=not args.no_validate)
    diffs = compare_outputs(args.b, args.a, seed=args.seed, device=args.device, backend=args.backend)
    same_outputs = all(d.ok for d in diffs)
    bad = next((d for d in diffs if not d.ok), None)
    if args.backend == "ort":
        common = dict(intra_threads=args.threads, inter_threads=1, device=args.device)
        m = measure_models({"A": (args.a, {**common, "level": lv_a}), "B": (args.b, {**common, "level": lv_b})},
                           baseline="A", warmup=args.warmup, rounds=args.repeats, seed=args.seed)
    else:
        from xflow.runtime.backend import make_backend_session
        from xflow.runtime.measure import measure
        from xflow.runtime.session import random_inputs

        feeds = random_inputs(args.a, seed=args.seed)
        sa, sb, twin = (make_backend_session(p, args.backend, threads=args.threads) for p in (args.a, args.b, args.a))
        m = measure({"A": sa.variant(feeds), "B": sb.variant(feeds)}, baseline="A", aa=twin.variant(feeds),
                    warmup=args.warmup, rounds=args.repeats, seed=args.seed)
    c = m.compare("B", min_effect=args.min_effect)  # time_B / time_A: "faster" means B is faster
    data = {
        "a": str(args.a), "b": str(args.b), "backend": args.backend, "level_a": lv_a, "level_b": lv_b,
        "threads": args.threads,
        "device": args.device, "ratio": c.speedup, "ci": list(c.speedup_ci), "verdict": c.verdict,
        "noise_floor": c.noise_floor, "min_effect": args.min_effect, "clock": c.clock, "rounds": c.rounds,
        "a_ms": m.median_ms("A"), "b_ms": m.median_ms("B"), "same_outputs": same_outputs,
        "max_abs_err": max((d.max_abs_err for d in diffs), default=0.0) if same_outputs else None,
        "output_mismatch": None if same_outputs else bad.reason, "conditions": m.conditions(),
        "warnings": m.warnings,
    }
    lines = [
        f"A {args.a} (level {lv_a}): {m.median_ms('A'):.3f} ms ± {m.iqr_ms('A'):.3f}",
        f"B {args.b} (level {lv_b}): {m.median_ms('B'):.3f} ms ± {m.iqr_ms('B'):.3f}",
        f"A/B = {c.speedup:.3f}× [{c.speedup_ci[0]:.3f}, {c.speedup_ci[1]:.3f}]: B is {c.verdict}"
        + (" than A" if c.verdict != "same" else " as A")
        + f" ({c.clock} clock, {c.rounds} rounds, A/A noise floor ±{100 * c.noise_floor:.1f}%)",
        "outputs agree" if same_outputs else f"outputs DIFFER: {bad.reason}",
    ]
    lines += [f"warning: {w}" for w in m.warnings]
    return Report(data, "\n".join(lines))


def _timing_flags(p: argparse.ArgumentParser, repeats: int) -> None:
    p.add_argument("--backend", choices=CLI_BACKENDS, default="ort",
                   help="ort (ONNX Runtime, default), torch (generated PyTorch code, CPU) or torch-cuda")
    p.add_argument("--threads", type=threads(allow_zero=True), default=1, help="intra-op threads (default 1; 0 = all cores)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="execution provider (default cpu)")
    p.add_argument("--repeats", type=int_range(2, 100_000, hint="an interval needs two rounds"), default=repeats,
                   help=f"interleaved timed rounds (default {repeats}; >= 2)")
    p.add_argument("--warmup", type=int_range(0, 100_000), default=5, help="untimed warm-up runs per variant (default 5)")
    p.add_argument("--no-validate", action="store_true",
                   help="only parse the file(s) instead of the full xflow.graphs.load_model check "
                        "(checker, shape inference, folding: slow for very large models)")


def register(sub: "argparse._SubParsersAction") -> None:
    """Add ``xflow latency`` and ``xflow compare``."""
    p = add_command(sub, "latency", _cmd_latency, help="measure a model's latency in ONNX Runtime or another backend")
    add_onnx_input(p, help="ONNX file")
    p.add_argument("--no-check", action="store_true",
                   help="torch backends: skip the output check against ONNX Runtime")
    p.add_argument("--no-reference", action="store_true",
                   help="torch backends: do not time ONNX Runtime beside the backend")
    p.add_argument("--level", action="append", choices=["disable", "basic", "extended", "all"],
                   help="ORT graph optimization level (repeat to compare levels in one run; default all)")
    p.add_argument("--mode", choices=["sequential", "parallel"], default="sequential",
                   help="ORT execution mode (default sequential)")
    _timing_flags(p, 30)

    c = add_command(sub, "compare", _cmd_compare,
                    help="check two models give the same outputs, then time both: ratio A/B with interval and verdict")
    add_onnx_input(c, ("a", "b"), help=("ONNX file A (the baseline)", "ONNX file B"))
    c.add_argument("--level", action="append", choices=["disable", "basic", "extended", "all"],
                   help="ORT optimization level: once for both models, or twice (A's then B's); default all")
    c.add_argument("--min-effect", type=finite_float(0, 10), default=0.0,
                   help="smallest relative effect that counts as a difference (default 0; e.g. 0.02)")
    c.add_argument("--seed", type=int_range(0), default=0, help="seed of the random inputs and the bootstrap (default 0)")
    _timing_flags(c, 30)
