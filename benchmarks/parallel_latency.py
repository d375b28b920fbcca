"""Batch-1 CPU latency of generated code (after Ramiel): fast serial code vs ONNX Runtime, and
parallel schedules vs the fast serial code — every speed-up with its interval and verdict.

Per model, two measurements with the measurement core (:mod:`xflow.parallel.bench`):

* **serial** (thread CPU time decides): ``gen_serial`` (shared torch backend, default lowering),
  ``gen_serial_tuned`` (per-conv kernel choice), ``gen_serial_plain`` (no fusion / NCHW /
  F.conv2d), ``gen_serial_torchscript``, ``eager_1t``, ``ort_1t``;
* **parallel** (wall time decides): ``gen_intra``, ``gen_branch_{threads,torchscript}`` (Ramiel,
  whole-graph clustering), ``gen_branch_regions_threads`` (the earlier per-region clustering),
  ``gen_hybrid_{threads,torchscript}``, ``gen_verified_threads``, ``ort_clusters`` (the hybrid
  plan as ONNX Runtime sub-sessions on threads), ``eager_2t``, ``ort_2t``, ``ort_parallel``.

Then cloning on/off where it fires (``run_cloning``). Result files (read by ``make report`` for
docs/parallel.md; each run replaces them):

* ``results/parallel/serial.csv``    — table ``parallel.serial``
* ``results/parallel/parallel.csv``  — table ``parallel.speedups``
* ``results/parallel/plans.csv``     — table ``parallel.plans``
* ``results/parallel/cloning.csv``   — table ``parallel.cloning``
* ``results/parallel/targets.csv``   — table ``parallel.targets`` (the issue's targets, pairwise)

    python benchmarks/parallel_latency.py --quick   # 112-139 px inputs, few rounds (a few minutes)
    python benchmarks/parallel_latency.py           # full resolution: googlenet, inception_v3, squeezenet1_1, ...
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

FULL_MODELS = ["googlenet", "inception_v3", "squeezenet1_1", "resnet50", "nasnet_like"]
QUICK_MODELS = ["googlenet", "inception_v3", "squeezenet1_1", "nasnet_like"]
CLONING_MODELS = ["inception_v3", "nasnet_like"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small inputs (112-139 px), 4 models, few rounds")
    ap.add_argument("--models", nargs="+", help=f"default: {' '.join(FULL_MODELS)}")
    ap.add_argument("--cloning-models", nargs="*", help=f"default: {' '.join(CLONING_MODELS)}")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, help="rounds (default 20; quick 6)")
    ap.add_argument("--warmup", type=int, help="warm-up calls (default 3; quick 2)")
    ap.add_argument("--backends", default="threads,torchscript")
    ap.add_argument("--no-write", action="store_true", help="do not write result files")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from xflow.parallel.bench import run, run_cloning
    from xflow.tables import save_result

    models = a.models or (QUICK_MODELS if a.quick else FULL_MODELS)
    cloning = CLONING_MODELS if a.cloning_models is None else a.cloning_models
    rounds = a.rounds or (6 if a.quick else 20)
    warmup = a.warmup if a.warmup is not None else (2 if a.quick else 3)
    recs, clone_recs = [], []
    t0 = time.time()
    for name in models:
        print(f"\n== {name}{' (quick)' if a.quick else ''}", flush=True)
        recs += run({"model": name, "quick": a.quick, "workers": a.workers, "rounds": rounds,
                     "warmup": warmup, "backends": a.backends.split(",")})
    for name in cloning:
        print(f"\n== cloning: {name}", flush=True)
        clone_recs += run_cloning({"model": name, "quick": a.quick, "workers": a.workers, "rounds": rounds,
                                   "warmup": warmup})
    if not a.no_write:
        for table, rows in (("serial", [r for r in recs if r["table"] == "serial"]),
                            ("parallel", [r for r in recs if r["table"] == "parallel"]),
                            ("plans", [r for r in recs if r["table"] == "plan"]),
                            ("targets", [r for r in recs if r["table"] == "targets"]),
                            ("cloning", clone_recs)):
            if rows:
                print(f"{table}: {save_result(rows, f'parallel/{table}.csv', threads=a.workers)}")
    print(f"total {time.time() - t0:.0f} s (the machine's load is in each row: foreign_cpu, busy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
