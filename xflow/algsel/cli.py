"""``xflow algsel``: list the algorithms, autotune a model per layer on a device.

* ``xflow algsel list`` — registered algorithms per family (conv2d, linear, pool), what they do.
* ``xflow algsel tune --model vgg16 --batch 1 [--device cpu|cuda] [--image 224] [--mode inference|train]
  [--ops conv2d,linear,pool] [--layouts nchw,channels_last] [--memory-budget MB] [--json]`` —
  per-layer choice table (every candidate's median ms, choice, shape) and the end-to-end
  comparison torch default vs autotuned (forward, or a training step), interleaved in a fresh run.
"""
from __future__ import annotations

import argparse

from xflow.clitools import Report, add_command, add_output, device, int_range, positive_int, threads

__all__ = ["register"]


def _list(args: argparse.Namespace) -> Report:
    from xflow.algsel.algorithms import ALIASES
    from xflow.algsel.ops import FAMILIES

    rows = []
    for op, fam in FAMILIES.items():
        for n in fam.names():
            a = fam.get(n)
            rows.append({"op": op, "name": n, "summary": a.summary, "tolerance": a.tolerance,
                         "devices": list(a.devices), "differentiable": a.differentiable})
    text = "\n".join(f"{r['op']:<7} {r['name']:<20} {r['summary']}" for r in rows)
    text += "\nconv aliases: " + ", ".join(f"{k}→{v}" for k, v in ALIASES.items())
    return Report(data={"algorithms": [r for r in rows if r["op"] == "conv2d"], "all": rows, "aliases": ALIASES},
                  text=text)


def _tune(args: argparse.Namespace) -> Report:
    import torch

    before = torch.get_num_threads()
    try:
        return _tune_impl(args)
    finally:
        torch.set_num_threads(before)


def _tune_impl(args: argparse.Namespace) -> Report:
    import torch

    from xflow.algsel.autotune import TRAIN_LR, autotune
    from xflow.algsel.models import build_model
    from xflow.errors import DeviceUnavailable, XflowError
    from xflow.runtime.measure import measure, torch_variant

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailable(f"--device {args.device}: torch sees no CUDA GPU here; use --device cpu")
    if args.batch < 1 or args.image < 8:
        raise XflowError("--batch must be ≥ 1 and --image ≥ 8")
    if args.repeats < 2 or args.e2e_repeats < 2:
        raise XflowError("--repeats and --e2e-repeats must be >= 2 (an interval needs two rounds)")
    if args.memory_budget is not None and args.memory_budget < 0:
        raise XflowError("--memory-budget must be >= 0 MB")
    if args.threads:
        torch.set_num_threads(args.threads)
    cands = [a.strip() for a in args.algorithms.split(",")] if args.algorithms else None
    model = build_model(args.model).to(args.device)
    x = torch.randn(args.batch, 3, args.image, args.image, generator=torch.Generator().manual_seed(0))
    x = x.to(args.device)
    ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    layouts = [o.strip() for o in args.layouts.split(",") if o.strip()]
    budget = None if args.memory_budget is None else int(args.memory_budget * 2**20)
    res = autotune(model, x, args.device, ops=ops, candidates=_per_family(cands, ops) if cands else None, mode=args.mode,
                   layouts=layouts, memory_budget=budget, repeats=args.repeats, e2e_rounds=args.e2e_repeats,
                   use_cache=not args.no_cache, refresh=args.refresh)
    thr = args.threads or None
    # a fresh measurement (the autotuner's own end-to-end check chose among variants: not reused)
    if args.mode == "train":
        import copy

        base = copy.deepcopy(model).train()
        opt = torch.optim.SGD([p for p in base.parameters() if p.requires_grad], lr=TRAIN_LR)
        tuned = res.apply(base)

        def step(mm):
            opt.zero_grad(set_to_none=True)
            mm(x).float().square().mean().backward()
            opt.step()
        m = measure({"torch": torch_variant(lambda: step(base), threads=thr, device=args.device),
                     "autotuned": torch_variant(lambda: step(tuned), threads=thr, device=args.device)},
                    baseline="torch", warmup=2, rounds=args.e2e_repeats)
    else:
        with torch.no_grad():
            m = measure({"torch": torch_variant(lambda: model(x), threads=thr, device=args.device),
                         "autotuned": torch_variant(lambda: res.model(x), threads=thr, device=args.device)},
                        baseline="torch", warmup=2, rounds=args.e2e_repeats)
    c = m.compare("autotuned")
    e2e = {k: {"median_ms": m.median_ms(k), "iqr_ms": m.iqr_ms(k), "n": m.rounds} for k in ("torch", "autotuned")}
    speedup = c.speedup
    rep = res.report
    ms_cols = [col for col in rep.columns if col.endswith("_ms") and col != "best_ms"]
    show = rep[["layer", "op", "config", "input_shape", "choice", "speedup", "speedup_lo", "speedup_hi",
                "cached"] + ms_cols]
    with __import__("pandas").option_context("display.width", 250, "display.max_columns", 40,
                                             "display.float_format", "{:.2f}".format):
        table = show.to_string(index=False)
    counts = rep["choice"].value_counts().to_dict()
    saved = str(res.save(args.save)) if args.save else None
    text = (
        f"device: {res.device_label} [{args.device}]  model: {args.model}  batch: {args.batch}  "
        f"image: {args.image}  mode: {args.mode}  layout: {res.layout}  cached transforms: "
        f"{res.cached_bytes / 2**20:.1f} MiB (budget {res.memory_budget / 2**20:.0f} MiB)\n\nper-layer choice (median ms per algorithm; a layer switches only on a "
        f"significant win):\n{table}\n\n"
        f"choices: {', '.join(f'{k}×{v}' for k, v in counts.items())}\n"
        f"end-to-end {'training step' if args.mode == 'train' else 'forward'} ({m.rounds} interleaved rounds, "
        f"{m.clock} clock): torch {e2e['torch']['median_ms']:.2f} ms "
        f"(IQR {e2e['torch']['iqr_ms']:.2f}), autotuned {e2e['autotuned']['median_ms']:.2f} ms "
        f"(IQR {e2e['autotuned']['iqr_ms']:.2f}) → speed-up {c.format()} (A/A noise ±{100 * c.noise_floor:.1f}%)"
    )
    text += "".join(f"\nwarning: {w}" for w in m.warnings)
    data = {"model": args.model, "batch": args.batch, "image": args.image, "device": args.device,
            "device_label": res.device_label, "mode": args.mode, "layout": res.layout, "choices": res.choices,
            "cached_bytes": res.cached_bytes, "memory_budget": res.memory_budget, "layers": res.rows, "e2e": e2e,
            "speedup": speedup, "speedup_ci": list(c.speedup_ci), "verdict": c.verdict,
            "noise_floor": c.noise_floor, "conditions": m.conditions(), "saved": saved}
    if saved:
        text += (f"\nchoices saved to {saved} (replay: swap(model, layers=d['choices'], layout=d['layout']) "
                 f"with d = json.load(f))")
    return Report(data=data, text=text)


def _per_family(names: list[str], ops: list[str]) -> dict[str, list[str]]:
    """``--algorithms`` applies to every family: each tunes the listed names it has (families with
    none of them keep ``default`` only), so ``--algorithms default`` is an A/A run of the tuner.
    A name no family knows is an error naming the known ones."""
    from xflow.algsel.ops import family
    from xflow.errors import UnknownName

    out: dict[str, list[str]] = {}
    found: set[str] = set()
    for op in ops:
        fam = family(op)
        have = []
        for n in names:
            try:
                have.append(fam.get(n).name)
            except UnknownName:
                continue
            found.add(n)
        out[op] = have or ["default"]
    unknown = [n for n in names if n not in found]
    if unknown:
        known = sorted({n for op in ops for n in family(op).names()})
        raise UnknownName(f"unknown algorithm(s) {', '.join(map(repr, unknown))} for families {', '.join(ops)}; "
                          f"known: {', '.join(known)} (see `xflow algsel list`)")
    return out


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add ``xflow algsel {list,tune}``."""
    p = subparsers.add_parser("algsel", help="per-layer algorithm selection: conv, linear, pooling (ai3-style)")
    sub = p.add_subparsers(dest="algsel_command", metavar="SUBCOMMAND")
    add_command(sub, "list", _list, help="list the algorithms of every family (conv2d, linear, pool)")
    t = add_command(sub, "tune", _tune, help="autotune each layer of a model on a device")
    t.add_argument("--model", default="vgg16",
                   help="vgg16 | resnet50 | squeezenet1_1 | alexnet | tiny (random init)")
    t.add_argument("--batch", type=positive_int(1024, hint="larger batches need many GB of memory"), default=1,
                   help="batch size")
    t.add_argument("--image", type=int_range(8, 4096), default=224, help="input height = width (default 224)")
    t.add_argument("--device", type=device(), default="cpu", help="cpu or cuda[:i]")
    t.add_argument("--algorithms", default=None, help="comma-separated candidates, for every family that has them (the others keep "
                        "default; `--algorithms default` tunes nothing: an A/A run); default: all available")
    t.add_argument("--mode", default="inference", choices=["inference", "train"],
                   help="tune the forward (inference) or forward+backward+update (train)")
    t.add_argument("--ops", default="conv2d,linear,pool", help="families to tune (default: conv2d,linear,pool)")
    t.add_argument("--layouts", default="nchw", help="model-wide layouts to try, first = incumbent "
                                                     "(default: nchw; e.g. nchw,channels_last)")
    t.add_argument("--memory-budget", type=float, default=None,
                   help="MB the tuned model may keep for cached transforms (default: 2x the parameters)")
    t.add_argument("--repeats", type=int_range(2, 10_000, hint="an interval needs two rounds"), default=10,
                   help="interleaved timing rounds per layer (default 10)")
    t.add_argument("--e2e-repeats", type=int_range(2, 10_000, hint="an interval needs two rounds"), default=10,
                   help="end-to-end timing rounds (default 10)")
    t.add_argument("--threads", type=threads(allow_zero=True), default=1,
                   help="torch intra-op threads while tuning/timing (default 1: stable on a shared machine; 0 = leave)")
    t.add_argument("--no-cache", action="store_true", help="do not read or write the choice cache")
    t.add_argument("--refresh", action="store_true", help="re-measure even when cached")
    add_output(t, "--save", inputs=(), default=None, suffixes=(".json",),
               help="write the choices + per-layer timings as JSON (replayable)")
