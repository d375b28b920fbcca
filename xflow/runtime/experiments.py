"""Experiments of the runtime harness, as ``run(config) -> records`` functions for :func:`xflow.sweep.run_sweep`.

:func:`zoo_latency` times one zoo model at several ORT optimization levels (interleaved, so the
levels are compared within one run) for one thread count and device. :func:`zoo_latency_grid`
builds the configs of the notebook / benchmark sweep (quick or full profile).
"""
from __future__ import annotations

import logging
from typing import Any

from xflow.graphs import zoo
from xflow.runtime.latency import measure_models
from xflow.runtime.session import available_devices

__all__ = ["QUICK_MODELS", "zoo_latency", "zoo_latency_grid"]

log = logging.getLogger(__name__)

QUICK_MODELS: tuple[str, ...] = ("squeezenet1_1", "mobilenet_v3_small", "resnet18")
"""Small zoo models used by quick profiles (each runs in a few ms on one core)."""


def zoo_latency(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Latency of zoo model ``config['model']`` at each level in ``config['levels']``, interleaved.

    Config keys: ``model`` (required), ``batch`` (1), ``cfg`` (zoo config overrides, ``{}``),
    ``levels`` (``['disable', 'all']``), ``threads`` (intra-op, 1), ``device`` (``'cpu'``),
    ``warmup`` (3), ``repeats`` (20 rounds). The first level (``disable`` when present) is the
    baseline, with an A/A control (a second session). Returns one record per (level, metric) with
    metrics ``latency_median_ms`` (with the quartiles ``q25_ms``/``q75_ms`` of the rounds, for error
    bars), ``latency_iqr_ms`` and ``speedup_vs_disable`` (or
    ``speedup_vs_baseline`` without ``disable``: paired speed-up of this level over the baseline), every row carrying ``speedup_lo``/``speedup_hi``, ``verdict``,
    ``noise_floor``, ``clock`` and the load of the run. The device is in ``device_kind`` (``device``
    is left to :func:`xflow.results.write_records`' machine label).
    """
    import numpy as np

    name = config["model"]
    batch = int(config.get("batch", 1))
    cfg = dict(config.get("cfg") or {})
    levels = list(dict.fromkeys(config.get("levels") or ["disable", "all"]))
    threads = int(config.get("threads", 1))
    device = config.get("device", "cpu")
    path = zoo.export(name, batch, **cfg)
    variants = {lv: (path, dict(level=lv, intra_threads=threads, device=device)) for lv in levels}
    base = "disable" if "disable" in variants else levels[0]
    m = measure_models(variants, baseline=base, warmup=int(config.get("warmup", 3)),
                       rounds=int(config.get("repeats", 20)))
    cond = m.conditions()
    records: list[dict[str, Any]] = []
    for lv in levels:
        c = m.compare(lv) if lv != base else None
        common = {"model": name, "batch": batch, "level": lv, "baseline": base, "threads": threads,
                  "device_kind": device, "repeats": m.rounds, "noise_floor": m.noise_floor(),
                  "speedup_lo": c.speedup_ci[0] if c else 1.0, "speedup_hi": c.speedup_ci[1] if c else 1.0,
                  "verdict": c.verdict if c else "baseline", **cond}
        q25, q75 = (float(q) for q in np.percentile(m.times(lv) * 1e3, [25, 75]))
        records += [
            {**common, "metric": "latency_median_ms", "value": m.median_ms(lv), "q25_ms": q25, "q75_ms": q75},
            {**common, "metric": "latency_iqr_ms", "value": m.iqr_ms(lv)},
            {**common, "metric": f"speedup_vs_{base}" if base == "disable" else "speedup_vs_baseline",
             "value": c.speedup if c else 1.0},
        ]
    log.info("zoo_latency %s: %s", name, {lv: round(m.median_ms(lv), 3) for lv in levels})
    return records


def zoo_latency_grid(quick: bool = True, devices: list[str] | None = None,
                     models: list[str] | None = None, *, threads: list[int] | None = None,
                     levels: list[str] | None = None, warmup: int | None = None,
                     repeats: int | None = None) -> list[dict[str, Any]]:
    """Configs for :func:`zoo_latency`: models × threads × devices (``None``: the profile's value).

    Quick: :data:`QUICK_MODELS`, levels disable/all, 3 warm-ups, 10 repeats. Full: every zoo model,
    all four levels, 5 warm-ups, 30 repeats. Threads default to (1, 2). ``devices`` defaults to
    ``['cpu']`` plus ``'cuda'`` when ONNX Runtime has a CUDA provider.
    """
    devices = devices or available_devices()
    models = models or (list(QUICK_MODELS) if quick else zoo.list_models())
    levels = list(levels or (["disable", "all"] if quick else ["disable", "basic", "extended", "all"]))
    warmup = (3 if quick else 5) if warmup is None else int(warmup)
    repeats = (10 if quick else 30) if repeats is None else int(repeats)
    out = []
    for dev in devices:
        for m in models:
            for t in (threads or (1, 2)):
                out.append({"model": m, "batch": 1, "levels": levels, "threads": int(t), "device": dev,
                            "warmup": warmup, "repeats": repeats})
    return out
