"""Batch-1 CPU latency of generated parallel code (after Ramiel) vs torch eager and ONNX Runtime.

For each model, in one process and interleaved (rounds over all variants, warm-up first, median
and IQR of the rounds), see :mod:`xflow.parallel.bench`:

    gen_serial, gen_intra, gen_branch_{threads,torchscript}, gen_hybrid_{threads,torchscript},
    eager_1t, eager_2t, ort_seq_1t, ort_seq_2t, ort_parallel

The headline is ``speedup_vs_gen_serial = median(gen_serial) / median(variant)``. Records go to
``results/parallel_latency/`` (long format, one metric per row) with the plan summary columns.

    .venv/bin/python benchmarks/parallel_latency.py --quick     # small inputs, <= 3 min
    .venv/bin/python benchmarks/parallel_latency.py             # full resolution, all five models
    .venv/bin/python benchmarks/parallel_latency.py --models googlenet --repeats 30
"""
from __future__ import annotations

import argparse
import sys
import time

from xflow.parallel.bench import run
from xflow.results import write_records

FULL_MODELS = ["inception_v3", "googlenet", "squeezenet1_1", "resnet50", "nasnet_like"]
QUICK_MODELS = ["googlenet", "inception_v3", "squeezenet1_1", "nasnet_like", "resnet50"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small inputs, 5 models, few repeats (<= 3 min idle)")
    ap.add_argument("--models", nargs="+", help=f"default: {' '.join(FULL_MODELS)}")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, help="rounds (default 20; quick 3)")
    ap.add_argument("--warmup", type=int, help="warm-up rounds (default 3; quick 1)")
    ap.add_argument("--backends", default="threads,torchscript")
    ap.add_argument("--no-write", action="store_true", help="do not write result records")
    ap.add_argument("--budget-s", type=float, help="skip remaining models after this many seconds "
                    "(default: 120 with --quick, none otherwise)")
    a = ap.parse_args(argv)
    budget = a.budget_s if a.budget_s is not None else (120.0 if a.quick else None)
    models = a.models or (QUICK_MODELS if a.quick else FULL_MODELS)
    repeats = a.repeats or (3 if a.quick else 20)
    warmup = a.warmup if a.warmup is not None else (1 if a.quick else 3)
    all_recs = []
    t0 = time.time()
    for name in models:
        if budget is not None and time.time() - t0 > budget:
            print(f"\n{name}: skipped (time budget of {budget:.0f} s used up; machine busy?)")
            continue
        recs = run({"model": name, "quick": a.quick, "workers": a.workers, "repeats": repeats,
                    "warmup": warmup, "inner": 2 if a.quick else 3, "backends": a.backends.split(",")})
        all_recs += recs
        med = {r["variant"]: r["value"] for r in recs if r["metric"] == "median_ms"}
        sp = {r["variant"]: r["value"] for r in recs if r["metric"] == "speedup_vs_gen_serial"}
        pred = {r["variant"]: r.get("predicted_speedup") for r in recs if r["metric"] == "median_ms"}
        print(f"\n{name}{' (quick)' if a.quick else ''}: {'variant':<24} {'median ms':>10} {'x gen_serial':>12} {'predicted':>9}")
        for v in med:
            p = pred.get(v)
            print(f"  {v:<24} {med[v]:10.2f} {sp[v]:12.2f} {('%.2f' % p) if p is not None else '':>9}",
                  flush=True)
    if not a.no_write:
        path = write_records(all_recs, "parallel_latency", threads=a.workers)
        print(f"\nrecords -> {path}")
    print(f"total {time.time() - t0:.0f} s (timings on this machine; see docs/parallel.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
