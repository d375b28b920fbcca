"""Zoo latency benchmark: ONNX Runtime latency of each zoo model per optimization level and threads.

For every (model, threads, device) the levels are timed in interleaved rounds after a warm-up
through the measurement core (:func:`xflow.runtime.experiments.zoo_latency`); the baseline is level
``disable`` measured in the same run (with an A/A control) and the headline number is
``speedup_vs_disable``, the paired speed-up with its 95 % interval and verdict. Records go to
``results/zoo_latency/`` (parts) and, with ``--save NAME``, to the committed
``results/runtime/NAME.csv`` that ``make report`` turns into the docs table.

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
    ap.add_argument("--save", default=None,
                    help="also write results/runtime/SAVE.csv (committed; quoted by docs/zoo_and_runtime.md)")
    a = ap.parse_args(argv)

    models = a.models or (QUICK_MODELS if a.quick else zoo.list_models())
    levels = a.levels or (["disable", "all"] if a.quick else ["disable", "basic", "extended", "all"])
    threads = a.threads or ([1] if a.quick else [1, 2])
    devices = a.devices or available_devices()
    repeats = a.repeats or (10 if a.quick else 30)
    warmup = a.warmup if a.warmup is not None else (3 if a.quick else 5)

    from xflow.runtime.measure import format_speedup

    records: dict[str, list[dict]] = {dev: [] for dev in devices}
    print(f"{'device':<6} {'model':<20} {'thr':>3} " + " ".join(f"{lv:>10}" for lv in levels)
          + "   speed-up of all over disable [95% CI] verdict  (median ms)", flush=True)
    for dev in devices:
        for m in models:
            for t in threads:
                t0 = time.perf_counter()
                recs = zoo_latency({"model": m, "levels": levels, "threads": t, "device": dev,
                                    "warmup": warmup, "repeats": repeats})
                records[dev] += recs
                med = {r["level"]: r["value"] for r in recs if r["metric"] == "latency_median_ms"}
                sp = next((r for r in recs if r["level"] == "all" and r["metric"].startswith("speedup_vs")), None)
                ratio = format_speedup(sp["value"], (sp["speedup_lo"], sp["speedup_hi"]), sp["verdict"]) if sp else "-"
                print(f"{dev:<6} {m:<20} {t:>3} " + " ".join(f"{med[lv]:10.2f}" for lv in levels)
                      + f"   {ratio}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    if not a.no_write:
        for dev, recs in records.items():
            path = write_records(recs, "zoo_latency", device=dev)
            print(f"wrote {len(recs)} {dev} records → {path}")
    if a.save:
        from xflow.tables import save_result

        print("wrote", save_result([r for recs in records.values() for r in recs], f"runtime/{a.save}.csv"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
