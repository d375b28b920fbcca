"""Rewrite search baselines: ORT latency of each zoo model vs its greedy / beam / random-walk rewrite.

For every model the searches run once (analytic cost by default), then per thread count the
original and every optimizer's output are timed together with interleaved repeats after a warm-up,
all at ``ORT_ENABLE_ALL`` — so ORT's own optimizer is the baseline every rewrite must beat. Each
optimizer appears twice: ``<method>`` (the search result as is) and ``<method>+guard`` (the
measured-fastest of the input and trajectory prefixes, :func:`xflow.rewrites.search.pick_fastest`,
chosen in a separate measurement — the "never slower" output). ``onnxsim`` / ``onnxslim`` join
when installed, and an ``A/A control`` (the original timed as a second variant) shows the noise
floor. Headline: ``speedup = median(original) / median(optimized)``, next to the cost
model's predicted speed-up and the search time. Records go to ``results/rewrite_baselines/``.

    .venv/bin/python benchmarks/rewrite_baselines.py --quick     # squeezenet1_1 + bert_encoder, 1 thread
    .venv/bin/python benchmarks/rewrite_baselines.py             # six issue models, 1 and 2 threads
    .venv/bin/python benchmarks/rewrite_baselines.py --models nasrnn --budget 10 --cost layout
"""
from __future__ import annotations

import argparse
import sys
import time

QUICK_MODELS = ["squeezenet1_1", "bert_encoder"]
FULL_MODELS = ["bert_encoder", "inception_v3", "googlenet", "squeezenet1_1", "resnext50_32x4d", "nasrnn"]


def _simplifiers(model):
    """``{name: model}`` for the ONNX simplifiers that are installed (none is required)."""
    out = {}
    try:
        import onnxsim

        simplified, ok = onnxsim.simplify(model)
        if ok:
            out["onnxsim"] = simplified
    except Exception:  # noqa: BLE001 - optional peer: absent or failing is not an error here
        pass
    try:
        import onnxslim

        out["onnxslim"] = onnxslim.slim(model)
    except Exception:  # noqa: BLE001
        pass
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two small models, budget 3, 1 thread, few repeats")
    ap.add_argument("--models", nargs="+", help="zoo models")
    ap.add_argument("--methods", nargs="+", default=["greedy", "beam", "random"])
    ap.add_argument("--budget", type=int, help="search budget (default 10; quick: 3)")
    ap.add_argument("--cost", default="analytic", choices=["analytic", "calibrated", "layout"])
    ap.add_argument("--threads", nargs="+", type=int, help="intra-op threads (default 1 2; quick: 1)")
    ap.add_argument("--repeats", type=int, help="timed rounds (default 30; quick: 10)")
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)

    from xflow.results import write_records
    from xflow.rewrites.cli import _cost_fn
    from xflow.rewrites.experiments import load_for_rewrite
    from xflow.rewrites.search import pick_fastest, search, trajectory_models
    from xflow.runtime import measure_interleaved

    models = a.models or (QUICK_MODELS if a.quick else FULL_MODELS)
    budget = a.budget or (3 if a.quick else 10)
    threads = a.threads or ([1] if a.quick else [1, 2])
    repeats = a.repeats or (10 if a.quick else 30)
    records: dict[int, list[dict]] = {t: [] for t in threads}
    print(f"{'model':<16} {'thr':>3} {'optimizer':<14} {'orig ms':>9} {'opt ms':>9} {'speedup':>8} "
          f"{'predicted':>9} {'search s':>8}  rewrites", flush=True)
    for name in models:
        original = load_for_rewrite(name)
        cost = _cost_fn(a.cost, threads[0])
        outs: dict[str, tuple] = {}
        for method in a.methods:
            res = search(original, method, cost, budget=budget)
            outs[method] = (res.model, res.predicted_speedup, res.time_s, [x["rule"] for x in res.actions])
            points = [m for _, m in trajectory_models(original, res.actions, max_points=4)]
            if points:
                t0 = time.perf_counter()
                guarded, info = pick_fastest(original, points, intra_threads=threads[0], repeats=max(5, repeats // 2))
                outs[f"{method}+guard"] = (guarded, res.predicted_speedup, res.time_s + time.perf_counter() - t0,
                                           [x["rule"] for x in res.actions][:len(res.actions)] if info["kept"] == "rewritten" else [])
            else:
                outs[f"{method}+guard"] = (original, 1.0, res.time_s, [])
        for k, m in _simplifiers(original).items():
            outs[k] = (m, float("nan"), 0.0, [])
        outs["A/A control"] = (original, 1.0, 0.0, [])  # the original again: the noise floor
        for t in threads:
            settings = {"level": "all", "intra_threads": t}
            variants = {"original": (original, settings)}
            variants.update({k: (v[0], settings) for k, v in outs.items()})
            stats = measure_interleaved(variants, warmup=3, repeats=repeats)
            base = stats["original"].median_ms
            for k, (_, pred, secs, rules) in outs.items():
                s = stats[k]
                sp = base / s.median_ms
                print(f"{name:<16} {t:>3} {k:<14} {base:9.3f} {s.median_ms:9.3f} {sp:8.3f} {pred:9.3f} "
                      f"{secs:8.1f}  {len(rules)} {','.join(sorted(set(rules)))}", flush=True)
                common = {"model": name, "optimizer": k, "threads": t, "budget": budget, "cost": a.cost}
                records[t] += [
                    {**common, "metric": "speedup", "value": sp},
                    {**common, "metric": "original_median_ms", "value": base},
                    {**common, "metric": "optimized_median_ms", "value": s.median_ms},
                    {**common, "metric": "optimized_iqr_ms", "value": s.iqr_ms},
                    {**common, "metric": "predicted_speedup", "value": pred},
                    {**common, "metric": "search_time_s", "value": secs},
                    {**common, "metric": "n_rewrites", "value": float(len(rules))},
                ]
    if not a.no_write:
        for t, recs in records.items():
            if recs:
                print("wrote", write_records(recs, "rewrite_baselines", device="cpu", threads=t))
    return 0


if __name__ == "__main__":
    sys.exit(main())
