"""Per-layer convolution algorithm selection: end-to-end latency on this machine (after ai3).

For each model × batch: torch default (untouched model), every uniform algorithm (all convs on one
algorithm, unsupported layers fall back to default), and the per-layer autotuned model, timed
interleaved in one run through the measurement core (warm-up, shuffled rounds, A/A control, speed-ups
with 95 % intervals and verdicts), plus a per-layer table of which algorithm
each layer chose and its shape. CPU always; CUDA too when available (adds torch with
``cudnn.benchmark`` as a variant). Records go to ``results/algsel_latency/``.

    .venv/bin/python benchmarks/algsel_latency.py --quick       # ≤ 3 min: small inputs, 2 models
    .venv/bin/python benchmarks/algsel_latency.py               # VGG16, ResNet-50, SqueezeNet, AlexNet; b1, b8; 224 px
"""
from __future__ import annotations

import argparse
import sys
import time

import pandas as pd
import torch

from xflow.algsel import list_algorithms, run
from xflow.results import write_records
from xflow.runtime.device import describe_device

FULL_MODELS = ["vgg16", "resnet50", "squeezenet1_1", "alexnet"]
QUICK_MODELS = ["squeezenet1_1", "alexnet"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small inputs (64 px), 2 models, few rounds")
    p.add_argument("--models", default=None, help="comma-separated (default: the four models)")
    p.add_argument("--batches", default="1,8")
    p.add_argument("--image", type=int, default=None, help="input size (default 224, quick 64)")
    p.add_argument("--device", default="auto", help="cpu | cuda | auto (cpu, and cuda when present)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0 = leave torch's)")
    p.add_argument("--repeats", type=int, default=None, help="end-to-end rounds (default 7, quick 5)")
    p.add_argument("--tune-repeats", type=int, default=None, help="per-layer rounds (default 7, quick 4)")
    p.add_argument("--no-cache", action="store_true", help="re-measure every layer (ignore the choice cache)")
    p.add_argument("--no-uniform", action="store_true", help="skip the uniform-algorithm variants")
    p.add_argument("--algorithms", default=None, help="comma-separated candidates (default: all registered)")
    args = p.parse_args(argv)

    models = args.models.split(",") if args.models else (QUICK_MODELS if args.quick else FULL_MODELS)
    batches = [int(b) for b in args.batches.split(",")]
    image = args.image or (64 if args.quick else 224)
    repeats = args.repeats or (5 if args.quick else 7)
    tune_repeats = args.tune_repeats or (4 if args.quick else 7)
    if args.device == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    elif args.device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA requested but not available; skipping", file=sys.stderr)
        return 0
    else:
        devices = [args.device]

    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 40)
    t_start = time.perf_counter()
    for device in devices:
        all_records = []
        for model in models:
            for batch in batches:
                t0 = time.perf_counter()
                cfg = dict(model=model, batch=batch, image=image, device=device, repeats=repeats,
                           tune_repeats=tune_repeats, threads=args.threads, uniform=not args.no_uniform,
                           use_cache=not args.no_cache, layer_errors=not args.quick,
                           algorithms=args.algorithms.split(",") if args.algorithms else None)
                recs = run(cfg)
                all_records += recs
                df = pd.DataFrame(recs)
                _print_tables(df, f"{model} batch {batch} {image}px on {describe_device(device).label()} "
                                  f"[{device}, {recs[0]['threads']} thread(s)]")
                print(f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
        path = write_records(all_records, "algsel_latency", device=device, threads=args.threads or None)
        print(f"\nrecords: {path}")
    print(f"total {time.perf_counter() - t_start:.1f} s")
    return 0


def _print_tables(df: pd.DataFrame, title: str) -> None:
    from xflow.runtime.measure import format_speedup

    print(f"\n=== {title} ===")
    e2e = df[df.kind == "e2e"]
    for sel, g in e2e.groupby("selection", sort=False):
        v = dict(zip(g.metric, g.value))
        r = g.iloc[0]
        sp = ("pruned (timed once)" if r["verdict"] == "pruned" else
              format_speedup(v["speedup_vs_torch"], (r["speedup_lo"], r["speedup_hi"]), r["verdict"]))
        print(f"  {sel:<24} {v['e2e_ms']:10.2f} ms  IQR {v['e2e_iqr_ms']:7.2f}  speed-up vs torch {sp}  "
              f"max rel err {v['max_rel_err']:.2g}")
    lay = df[(df.kind == "layer") & (df.metric == "layer_median_ms")]
    piv = lay.pivot_table(index="layer", columns="algorithm", values="value", sort=False)
    piv = piv.reindex(columns=[a for a in list_algorithms() if a in piv.columns])
    meta = lay.drop_duplicates("layer").set_index("layer")[["config", "input_shape", "choice"]]
    table = meta.join(piv.round(3))
    print("per-layer median ms (choice = autotuner pick: significantly faster than default by > 5 % "
          "and the A/A noise floor, Bonferroni over candidates):")
    print(table.to_string())
    print("choices:", lay.drop_duplicates("layer")["choice"].value_counts().to_dict())


if __name__ == "__main__":
    sys.exit(main())
