"""Zoo latency benchmark: ONNX Runtime latency of each zoo model per optimization level and threads.

For every (model, threads, device) the levels are timed with interleaved repeats after a warm-up
(:func:`xflow.runtime.experiments.zoo_latency`); the baseline is level ``disable`` measured in the
same run and the headline number is ``speedup_vs_disable = median(disable) / median(level)``.
Records go to ``results/zoo_latency/`` via :func:`xflow.results.write_records`.

    .venv/bin/python benchmarks/zoo_latency.py --quick          # 4 small models, 1 thread, ~30 s
    .venv/bin/python benchmarks/zoo_latency.py                  # every model, 4 levels, 1 and 2 threads
    .venv/bin/python benchmarks/zoo_latency.py --models resnet50 vgg16 --threads 1 --repeats 20
"""
from __future__ import annotations

import argparse
import sys
import time

from xflow.graphs import zoo
from xflow.results import write_records
from xflow.runtime import available_devices
from xflow.runtime.experiments import zoo_latency

QUICK_MODELS = ["squeezenet1_1", "mobilenet_v3_small", "resnet18", "nasrnn"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small models, levels disable/all, 1 thread, few repeats")
    ap.add_argument("--models", nargs="+", help="zoo models (default: quick set or all)")
    ap.add_argument("--levels", nargs="+", choices=["disable", "basic", "extended", "all"])
    ap.add_argument("--threads", nargs="+", type=int, help="intra-op thread counts (default 1 2; quick: 1)")
    ap.add_argument("--devices", nargs="+", choices=["cpu", "cuda"], help="default: every available device")
    ap.add_argument("--repeats", type=int, help="timed runs per level (default 30; quick: 10)")
    ap.add_argument("--warmup", type=int, help="warm-up runs per level (default 5; quick: 3)")
    ap.add_argument("--no-write", action="store_true", help="do not write result records")
    a = ap.parse_args(argv)

    models = a.models or (QUICK_MODELS if a.quick else zoo.list_models())
    levels = a.levels or (["disable", "all"] if a.quick else ["disable", "basic", "extended", "all"])
    threads = a.threads or ([1] if a.quick else [1, 2])
    devices = a.devices or available_devices()
    repeats = a.repeats or (10 if a.quick else 30)
    warmup = a.warmup if a.warmup is not None else (3 if a.quick else 5)

    records: dict[str, list[dict]] = {dev: [] for dev in devices}
    print(f"{'device':<6} {'model':<20} {'thr':>3} " + " ".join(f"{lv:>10}" for lv in levels)
          + "   all/disable  (median ms)", flush=True)
    for dev in devices:
        for m in models:
            for t in threads:
                t0 = time.perf_counter()
                recs = zoo_latency({"model": m, "levels": levels, "threads": t, "device": dev,
                                    "warmup": warmup, "repeats": repeats})
                records[dev] += recs
                med = {r["level"]: r["value"] for r in recs if r["metric"] == "latency_median_ms"}
                ratio = (f"{med['all'] / med['disable']:.3f}" if "all" in med and "disable" in med else "-")
                print(f"{dev:<6} {m:<20} {t:>3} " + " ".join(f"{med[lv]:10.2f}" for lv in levels)
                      + f"   {ratio:>11}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    if not a.no_write:
        for dev, recs in records.items():
            path = write_records(recs, "zoo_latency", device=dev)
            print(f"wrote {len(recs)} {dev} records → {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
