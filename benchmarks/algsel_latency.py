"""Per-layer algorithm selection (after ai3): end-to-end latency on this machine, inference and training.

Inference, for each model × batch: torch default (the untouched model), torch run channels_last (the
layout alone), every uniform conv algorithm (unsupported layers fall back to default) and the
autotuned model (convolutions, linear layers and pooling tuned per layer in the NCHW and the
channels_last layout; the layout picked end to end) — timed interleaved in one run through the
measurement core (warm-up, shuffled rounds, A/A control, speed-ups with 95 % intervals and
verdicts). Training, for each training model: one SGD step of the untouched model, of the model
tuned in training mode, and of the model tuned for inference (what tuning for the wrong mode
costs). Plus per-layer tables (every algorithm's median ms, the choice), numeric errors and the
memory the algorithms keep. CPU always; CUDA too when available.

Result files (``save_result``, read by ``xflow/algsel/report.py`` → ``make report`` → docs/algsel.md):
``results/algsel/e2e.csv`` (end-to-end rows, inference and training), ``results/algsel/layers.csv``
(per-layer timings and choices), ``results/algsel/memory.csv``, ``results/algsel/errors.csv``;
``--quick`` writes the same names under ``results/algsel/quick/`` (never the docs' files).

    .venv/bin/python benchmarks/algsel_latency.py --quick     # ~3 min: tiny + SqueezeNet at 64 px
    .venv/bin/python benchmarks/algsel_latency.py             # VGG16, ResNet-50 (+ SqueezeNet, AlexNet) b1 224 px, 1 thread
"""
from __future__ import annotations

import argparse
import sys
import time

from pathlib import Path

import pandas as pd
import torch

from xflow.algsel import list_algorithms, run
from xflow.runtime.device import describe_device
from xflow.tables import save_result

FULL_MODELS = ["vgg16", "resnet50", "squeezenet1_1", "alexnet"]
TRAIN_MODELS = ["vgg16", "resnet50"]
QUICK_MODELS = ["tiny", "squeezenet1_1"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small inputs (64 px), small models, few rounds")
    p.add_argument("--models", default=None, help="comma-separated inference models ('' for none; default: the four models)")
    p.add_argument("--train-models", default=None, help="comma-separated training models ('' for none; "
                                                        "default vgg16,resnet50; quick: tiny)")
    p.add_argument("--batches", default="1", help="comma-separated batch sizes (default 1)")
    p.add_argument("--train-batch", type=int, default=1)
    p.add_argument("--image", type=int, default=None, help="input size (default 224, quick 64)")
    p.add_argument("--device", default="auto", help="cpu | cuda | auto (cpu, and cuda when present)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0 = leave torch's)")
    p.add_argument("--repeats", type=int, default=None, help="end-to-end rounds (default 15, quick 5)")
    p.add_argument("--tune-repeats", type=int, default=None, help="per-layer rounds (default 10, quick 3)")
    p.add_argument("--no-cache", action="store_true", help="re-measure every layer (ignore the choice cache)")
    p.add_argument("--no-uniform", action="store_true", help="skip the uniform-algorithm variants")
    p.add_argument("--algorithms", default=None, help="comma-separated conv candidates (default: all available)")
    p.add_argument("--train-algorithms", default=None,
                   help="conv candidates when tuning for training (default: all differentiable but fft, whose "
                        "one-call pilot alone costs seconds per layer at 224 px and is pruned on every layer)")
    p.add_argument("--no-inference-tuned", action="store_true",
                   help="training runs: do not also time the inference-tuned model (it is tuned afresh unless this "
                        "process tuned the same model for inference before)")
    p.add_argument("--fresh", action="store_true",
                   help="replace the result files (default: replace only this run's (model, mode, batch, image, "
                        "device) units and keep the others, so models can be run one at a time)")
    args = p.parse_args(argv)
    if args.batches and any(int(b) < 1 for b in args.batches.split(",")) or args.train_batch < 1:
        p.error("batch sizes must be >= 1")

    if args.models is not None:
        models = [m for m in args.models.split(",") if m]
    else:
        models = QUICK_MODELS if args.quick else FULL_MODELS
    if args.train_models is not None:
        train_models = [m for m in args.train_models.split(",") if m]
    else:
        train_models = ["tiny"] if args.quick else TRAIN_MODELS
    batches = [int(b) for b in args.batches.split(",")]
    image = args.image or (64 if args.quick else 224)
    repeats = args.repeats or (5 if args.quick else 15)
    tune_repeats = args.tune_repeats or (3 if args.quick else 10)
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
    sub = "algsel/quick" if args.quick else "algsel"
    records: list[dict] = []
    jobs = [(m, b, "inference") for m in models for b in batches] + [(m, args.train_batch, "train") for m in train_models]
    for device in devices:
        for model, batch, mode in jobs:
            t0 = time.perf_counter()
            cfg = dict(model=model, batch=batch, image=image, device=device, repeats=repeats, mode=mode,
                       tune_repeats=tune_repeats, threads=args.threads, uniform=not args.no_uniform and mode == "inference",
                       use_cache=not args.no_cache, layer_errors=mode == "inference" and not args.quick,
                       e2e_rounds=6 if args.quick else 10, also_inference_tuned=mode == "train" and not args.no_inference_tuned,
                       algorithms=_conv_candidates(args, mode))
            recs = run(cfg)
            records += recs
            _print_tables(pd.DataFrame(recs), f"{model} {mode} batch {batch} {image}px on "
                                              f"{describe_device(device).label()} [{device}, {recs[0]['threads']} thread(s)]")
            print(f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
            _save(records, sub, device, args.threads, fresh=args.fresh)  # each finished unit is saved
    print(f"\nresults: results/{sub}/{{e2e,layers,memory,errors}}.csv   total {time.perf_counter() - t_start:.1f} s")
    return 0


def _conv_candidates(args: argparse.Namespace, mode: str) -> list[str] | None:
    if mode == "train":
        if args.train_algorithms:
            return args.train_algorithms.split(",")
        if args.algorithms:
            return args.algorithms.split(",")
        return None if args.quick else [a for a in list_algorithms() if a != "fft"]
    return args.algorithms.split(",") if args.algorithms else None


UNIT = ["model", "mode", "batch", "image", "device_kind"]


def _save(records: list[dict], sub: str, device: str, threads: int, fresh: bool = False) -> None:
    """Write this run's records, replacing only its own units in existing files (unless ``fresh``);
    a lock file serialises concurrent benchmark processes' read-merge-write."""
    import fcntl

    from xflow.results import provenance
    from xflow.tables import results_root

    df = pd.DataFrame(records)
    for k, v in provenance(device, threads or None).items():
        if k not in df.columns:
            df[k] = v
    parts = {"e2e": df.kind.isin(["e2e", "tune_e2e"]), "memory": df.kind == "memory",
             "layers": (df.kind == "layer") & (df.metric == "layer_median_ms"),
             "errors": (df.kind == "layer") & (df.metric == "layer_max_rel_err")}
    root = results_root() / sub
    root.mkdir(parents=True, exist_ok=True)
    import tempfile

    with open(Path(tempfile.gettempdir()) / f"xflow-{sub.replace('/', '_')}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name, mask in parts.items():
            if not mask.any():
                continue
            new = df[mask].dropna(axis=1, how="all")
            path = root / f"{name}.csv"
            if path.exists() and not fresh:
                old = pd.read_csv(path)
                units = set(map(tuple, new[UNIT].astype(str).values))
                keep = ~old[UNIT].astype(str).apply(tuple, axis=1).isin(units)
                new = pd.concat([old[keep], new], ignore_index=True)
            save_result(new, f"{sub}/{name}.csv", device=device, threads=threads or None)


def _print_tables(df: pd.DataFrame, title: str) -> None:
    from xflow.runtime.measure import format_speedup

    print(f"\n=== {title} ===")
    e2e = df[df.kind == "e2e"]
    for sel, g in e2e.groupby("selection", sort=False):
        v = dict(zip(g.metric, g.value))
        r = g.iloc[0]
        sp = ("pruned (timed once)" if r["verdict"] == "pruned" else
              format_speedup(v["speedup_vs_torch"], (r["speedup_lo"], r["speedup_hi"]), r["verdict"]))
        grad = f"  grad err {v['grad_max_rel_err']:.2g}" if "grad_max_rel_err" in v else ""
        print(f"  {sel:<24} {v['e2e_ms']:10.2f} ms  IQR {v['e2e_iqr_ms']:7.2f}  speed-up vs torch {sp}  "
              f"max rel err {v['max_rel_err']:.2g}{grad}")
    lay = df[(df.kind == "layer") & (df.metric == "layer_median_ms") & (df.chosen_layout == True)]  # noqa: E712
    if lay.empty:
        return
    piv = lay.pivot_table(index="layer", columns="algorithm", values="value", sort=False)
    order = list(dict.fromkeys(["default"] + list_algorithms() + list(piv.columns)))
    piv = piv.reindex(columns=[a for a in order if a in piv.columns])
    meta = lay.drop_duplicates("layer").set_index("layer")[["op", "layout", "config", "input_shape", "choice"]]
    print("per-layer median ms in the chosen layout (choice: significantly faster than default by > 5 % and "
          "the A/A noise floor, Bonferroni over candidates):")
    print(meta.join(piv.round(3)).to_string())
    print("choices:", lay.drop_duplicates("layer")["choice"].value_counts().to_dict())


if __name__ == "__main__":
    sys.exit(main())
