"""``xflow algsel``: list the convolution algorithms, autotune a model per layer on a device.

* ``xflow algsel list`` — registered algorithms, what they support.
* ``xflow algsel tune --model vgg16 --batch 1 [--device cpu|cuda] [--image 224] [--json]`` —
  per-layer choice table (every candidate's median ms, choice, shape) and the end-to-end
  comparison torch default vs autotuned, interleaved in the same run.
"""
from __future__ import annotations

import argparse

from xflow.clitools import Report, add_command

__all__ = ["register"]


def _list(args: argparse.Namespace) -> Report:
    from xflow.algsel.algorithms import ALIASES, get_algorithm, list_algorithms

    rows = [{"name": n, "summary": get_algorithm(n).summary, "tolerance": get_algorithm(n).tolerance}
            for n in list_algorithms()]
    text = "\n".join(f"{r['name']:<14} {r['summary']}" for r in rows)
    text += "\naliases: " + ", ".join(f"{k}→{v}" for k, v in ALIASES.items())
    return Report(data={"algorithms": rows, "aliases": ALIASES}, text=text)


def _tune(args: argparse.Namespace) -> Report:
    import torch

    before = torch.get_num_threads()
    try:
        return _tune_impl(args)
    finally:
        torch.set_num_threads(before)


def _tune_impl(args: argparse.Namespace) -> Report:
    import torch

    from xflow.algsel.autotune import autotune
    from xflow.algsel.models import build_model
    from xflow.errors import DeviceUnavailable, XflowError
    from xflow.runtime.measure import measure, torch_variant

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailable(f"--device {args.device}: torch sees no CUDA GPU here; use --device cpu")
    if args.batch < 1 or args.image < 8:
        raise XflowError("--batch must be ≥ 1 and --image ≥ 8")
    if args.repeats < 2 or args.e2e_repeats < 2:
        raise XflowError("--repeats and --e2e-repeats must be >= 2 (an interval needs two rounds)")
    if args.threads:
        torch.set_num_threads(args.threads)
    cands = [a.strip() for a in args.algorithms.split(",")] if args.algorithms else None
    model = build_model(args.model).to(args.device)
    x = torch.randn(args.batch, 3, args.image, args.image, generator=torch.Generator().manual_seed(0))
    x = x.to(args.device)
    res = autotune(model, x, args.device, candidates=cands, repeats=args.repeats,
                   use_cache=not args.no_cache, refresh=args.refresh)
    thr = args.threads or None
    with torch.no_grad():
        m = measure({"torch": torch_variant(lambda: model(x), threads=thr, device=args.device),
                     "autotuned": torch_variant(lambda: res.model(x), threads=thr, device=args.device)},
                    baseline="torch", warmup=2, rounds=args.e2e_repeats)
    c = m.compare("autotuned")
    e2e = {k: {"median_ms": m.median_ms(k), "iqr_ms": m.iqr_ms(k), "n": m.rounds} for k in ("torch", "autotuned")}
    speedup = c.speedup
    rep = res.report
    ms_cols = [col for col in rep.columns if col.endswith("_ms") and col != "best_ms"]
    show = rep[["layer", "config", "input_shape", "choice", "speedup", "speedup_lo", "speedup_hi", "cached"] + ms_cols]
    with __import__("pandas").option_context("display.width", 250, "display.max_columns", 40,
                                             "display.float_format", "{:.2f}".format):
        table = show.to_string(index=False)
    counts = rep["choice"].value_counts().to_dict()
    saved = str(res.save(args.save)) if args.save else None
    text = (
        f"device: {res.device_label} [{args.device}]  model: {args.model}  batch: {args.batch}  "
        f"image: {args.image}\n\nper-layer choice (median ms per algorithm; a layer switches only on a "
        f"significant win):\n{table}\n\n"
        f"choices: {', '.join(f'{k}×{v}' for k, v in counts.items())}\n"
        f"end-to-end ({m.rounds} interleaved rounds, {m.clock} clock): torch {e2e['torch']['median_ms']:.2f} ms "
        f"(IQR {e2e['torch']['iqr_ms']:.2f}), autotuned {e2e['autotuned']['median_ms']:.2f} ms "
        f"(IQR {e2e['autotuned']['iqr_ms']:.2f}) → speed-up {c.format()} (A/A noise ±{100 * c.noise_floor:.1f}%)"
    )
    text += "".join(f"\nwarning: {w}" for w in m.warnings)
    data = {"model": args.model, "batch": args.batch, "image": args.image, "device": args.device,
            "device_label": res.device_label, "choices": res.choices, "layers": res.rows, "e2e": e2e,
            "speedup": speedup, "speedup_ci": list(c.speedup_ci), "verdict": c.verdict,
            "noise_floor": c.noise_floor, "conditions": m.conditions(), "saved": saved}
    if saved:
        text += f"\nchoices saved to {saved} (replay: swap_conv2d(model, json.load(f)['choices']))"
    return Report(data=data, text=text)


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add ``xflow algsel {list,tune}``."""
    p = subparsers.add_parser("algsel", help="per-layer convolution algorithm selection (ai3-style)")
    sub = p.add_subparsers(dest="algsel_command", metavar="SUBCOMMAND")
    add_command(sub, "list", _list, help="list the convolution algorithms")
    t = add_command(sub, "tune", _tune, help="autotune each conv layer of a model on a device")
    t.add_argument("--model", default="vgg16",
                   help="vgg16 | resnet50 | squeezenet1_1 | alexnet | tiny (random init)")
    t.add_argument("--batch", type=int, default=1)
    t.add_argument("--image", type=int, default=224, help="input height = width (default 224)")
    t.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    t.add_argument("--algorithms", default=None, help="comma-separated candidates (default: all)")
    t.add_argument("--repeats", type=int, default=10, help="interleaved timing rounds per layer (default 10; >= 2)")
    t.add_argument("--e2e-repeats", type=int, default=10, help="end-to-end timing rounds (default 10; >= 2)")
    t.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads while tuning/timing (default 1: stable on a shared machine; 0 = leave)")
    t.add_argument("--no-cache", action="store_true", help="do not read or write the choice cache")
    t.add_argument("--refresh", action="store_true", help="re-measure even when cached")
    t.add_argument("--save", default=None, help="write the choices + per-layer timings as JSON (replayable)")
