"""Rewrite optimizers vs ORT_ENABLE_ALL: end-to-end latency of each zoo model, original vs optimized.

For BERT-like encoder, Inception-v3, GoogLeNet, SqueezeNet, ResNeXt-50 and NASRNN: greedy / beam /
random search (analytic cost), the PPO policy (``--checkpoint``), ``onnxsim`` / ``onnxslim`` when
installed, each search also behind the "never slower" guard (``<method>+guard``: the
measured-fastest of the original and trajectory prefixes), plus an A/A control. Everything runs in
ORT with ``ORT_ENABLE_ALL``, 1 and 2 threads, interleaved repeats in one run; the table shows the
measured speed-up (median original / median optimized) next to the cost model's predicted one and
the optimization time. One implementation: :mod:`xflow.rewrites.benchmark`. Records go to
``results/rewrite_latency/``.

    .venv/bin/python benchmarks/rewrite_latency.py --quick       # squeezenet1_1 + small nasrnn, 1 thread (≤ 3 min)
    .venv/bin/python benchmarks/rewrite_latency.py               # six models, 1 and 2 threads (long)
    .venv/bin/python benchmarks/rewrite_latency.py --models nasrnn --checkpoint runs/RUN/agent.pt
"""
from __future__ import annotations

import argparse
import dataclasses
import sys


def main(argv: list[str] | None = None) -> int:
    from xflow.rewrites.benchmark import FULL, QUICK, run_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="squeezenet1_1 + small nasrnn, budget 3, 1 thread")
    ap.add_argument("--models", nargs="+", help="zoo models (default: the six issue models)")
    ap.add_argument("--methods", nargs="+", help="search methods (default greedy beam random)")
    ap.add_argument("--budget", type=int, help="search budget (default 10; quick: 3)")
    ap.add_argument("--time-budget-s", type=float, help="per-search time cap (default 120; quick: 30)")
    ap.add_argument("--cost", choices=["analytic", "calibrated", "layout"], help="search cost model")
    ap.add_argument("--threads", nargs="+", type=int, help="ORT intra-op threads (default 1 2; quick: 1)")
    ap.add_argument("--repeats", type=int, help="interleaved timed rounds (default 30)")
    ap.add_argument("--checkpoint", help="agent.pt of a trained PPO policy: adds the rl optimizer")
    ap.add_argument("--no-simplifiers", action="store_true", help="skip onnxsim / onnxslim")
    ap.add_argument("--no-write", action="store_true", help="do not write results records")
    a = ap.parse_args(argv)

    base = QUICK if a.quick else FULL
    overrides = {k: v for k, v in {"models": a.models, "methods": a.methods, "budget": a.budget,
                                   "time_budget_s": a.time_budget_s, "cost": a.cost, "threads": a.threads,
                                   "repeats": a.repeats, "checkpoint": a.checkpoint}.items() if v is not None}
    cfg = dataclasses.replace(base, **overrides, use_simplifiers=not a.no_simplifiers)

    from xflow.runtime.measure import format_speedup

    print(f"{'model':<16} {'thr':>3} {'optimizer':<15} {'orig ms':>9} {'opt ms':>9} {'speed-up [95% CI] verdict':>32} "
          f"{'predicted':>9} {'opt s':>7}  rewrites", flush=True)

    def show(r: dict) -> None:
        rules = r["rules"]
        sp = format_speedup(r["speedup"], (r["speedup_lo"], r["speedup_hi"]), r["verdict"])
        print(f"{r['model']:<16} {r['threads']:>3} {r['optimizer']:<15} {r['original_median_ms']:9.3f} "
              f"{r['optimized_median_ms']:9.3f} {sp:>32} {r['predicted_speedup']:9.3f} "
              f"{r['optimize_time_s']:7.1f}  {len(rules)} {','.join(sorted(set(rules)))}", flush=True)

    records = []
    for name in cfg.models:
        records += run_model(name, cfg, on_row=show)
    if not a.no_write and records:
        from xflow.results import write_records

        for t in cfg.threads:
            recs = [r for r in records if r["threads"] == t]
            if recs:
                print("wrote", write_records(recs, "rewrite_latency", device="cpu", threads=t))
    return 0


if __name__ == "__main__":
    sys.exit(main())
