"""Autobatching throughput: eager vs none/depth/agenda vs hand-batched, per model, train and infer.

Usage::

    .venv/bin/python benchmarks/autobatch_throughput.py            # full: DyNet sizes, minibatch 64
    .venv/bin/python benchmarks/autobatch_throughput.py --quick    # small sizes, <= 3 minutes
    .venv/bin/python benchmarks/autobatch_throughput.py --dynet    # + DyNet peer (dynet38), if installed

Every implementation of one model runs in the same process, interleaved (rotated order), after a
warm-up round; medians and IQR over repeats; ratios against eager and hand-batched come from the
same run (see :mod:`xflow.autobatch.bench`). Runs go through :func:`xflow.sweep.run_sweep`
(local backend: timings must not share the CPU with other sweep tasks) and records are appended
with :func:`xflow.results.write_records` under ``results/autobatch_throughput/``.
"""
from __future__ import annotations

import argparse
import sys
import time

from xflow.autobatch.bench import IMPLS, default_config, run
from xflow.results import write_records
from xflow.sweep import run_sweep

MODELS = ("bilstm", "bilstm-char", "treelstm")


def configs(quick: bool, models: list[str], tag: str) -> list[dict]:
    """One config per model; ``tag`` makes a fresh measurement (sweep cache key) per invocation."""
    out = []
    for m in models:
        cfg = default_config(m, quick=quick, run_tag=tag)
        if quick and m == "bilstm-char":
            cfg["batch"] = 16  # ~6x more nodes per sentence: keep --quick under 3 minutes
        out.append(cfg)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small dimensions, batch 32, 3 repeats")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--cached", action="store_true", help="reuse cached sweep results instead of re-measuring")
    ap.add_argument("--dynet", action="store_true", help="also run the DyNet peer (needs dynet38)")
    args = ap.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    tag = "cached" if args.cached else time.strftime("%Y%m%dT%H%M%S")
    res = run_sweep(run, configs(args.quick, models, tag), name="autobatch_throughput", backend="local",
                    progress=False)
    records = res.records
    if args.dynet:
        from xflow.autobatch.dynet_peer import dynet_available, run_dynet

        if dynet_available():
            for m in models:
                if m in ("bilstm", "treelstm"):
                    records += run_dynet(default_config(m, quick=args.quick))
        else:
            sys.stdout.write("dynet38 not installed: DyNet peer skipped\n")
    if res.failures:
        for h, err in res.failures.items():
            sys.stderr.write(f"config {h} failed:\n{err}\n")
    path = write_records(records, "autobatch_throughput", threads=1)
    tp = [r for r in records if r["metric"] == "throughput"]
    ratio = {(r["model"], r["impl"], r["mode"]): r["value"] for r in records if r["metric"] == "speedup_vs_eager"}
    sys.stdout.write(f"{'model':12s} {'impl':8s} {'mode':6s} {'ex/s':>9s} {'IQR':>17s} {'x eager':>8s}\n")
    order = {k: i for i, k in enumerate(IMPLS + ("dynet-0", "dynet-1"))}
    for r in sorted(tp, key=lambda r: (r["model"], r["mode"], order.get(r["impl"], 99))):
        q = f"[{r.get('q25', float('nan')):.1f}, {r.get('q75', float('nan')):.1f}]"
        x = ratio.get((r["model"], r["impl"], r["mode"]))
        sys.stdout.write(f"{r['model']:12s} {r['impl']:8s} {r['mode']:6s} {r['value']:9.1f} {q:>17s} "
                         f"{'' if x is None else f'{x:8.2f}'}\n")
    sys.stdout.write(f"records: {path}\n")
    return 1 if res.failures else 0


if __name__ == "__main__":
    sys.exit(main())
