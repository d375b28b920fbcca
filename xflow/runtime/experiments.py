"""Experiments of the runtime harness, as ``run(config) -> records`` functions for :func:`xflow.sweep.run_sweep`.

:func:`zoo_latency` times one zoo model at several ORT optimization levels (interleaved, so the
levels are compared within one run) for one thread count and device. :func:`zoo_latency_grid`
builds the configs of the notebook / benchmark sweep (quick or full profile).
"""
from __future__ import annotations

import logging
from typing import Any

__all__ = ["QUICK_MODELS", "zoo_latency", "zoo_latency_grid"]

log = logging.getLogger(__name__)

QUICK_MODELS: tuple[str, ...] = ("squeezenet1_1", "mobilenet_v3_small", "resnet18")
"""Small zoo models used by quick profiles (each runs in a few ms on one core)."""


def zoo_latency(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Latency of zoo model ``config['model']`` at each level in ``config['levels']``, interleaved.

    Config keys: ``model`` (required), ``batch`` (1), ``cfg`` (zoo config overrides, ``{}``),
    ``levels`` (``['disable', 'all']``), ``threads`` (intra-op, 1), ``device`` (``'cpu'``),
    ``warmup`` (3), ``repeats`` (20). Returns one record per (level, metric) with metrics
    ``latency_median_ms``, ``latency_iqr_ms``, ``latency_min_ms`` and ``speedup_vs_disable``
    (median at ``disable`` / median at this level, when ``disable`` is among the levels). The device
    is in ``device_kind`` (``device`` is left to :func:`xflow.results.write_records`' machine label).
    """
    from xflow.graphs import zoo
    from xflow.runtime.latency import measure_interleaved

    name = config["model"]
    batch = int(config.get("batch", 1))
    cfg = dict(config.get("cfg") or {})
    levels = list(dict.fromkeys(config.get("levels") or ["disable", "all"]))
    threads = int(config.get("threads", 1))
    device = config.get("device", "cpu")
    path = zoo.export(name, batch, **cfg)
    variants = {lv: (path, dict(level=lv, intra_threads=threads, device=device)) for lv in levels}
    stats = measure_interleaved(variants, warmup=int(config.get("warmup", 3)),
                                repeats=int(config.get("repeats", 20)))
    records: list[dict[str, Any]] = []
    base = stats["disable"].median_ms if "disable" in stats else None
    for lv, s in stats.items():
        common = {"model": name, "batch": batch, "level": lv, "threads": threads,
                  "device_kind": device, "repeats": s.repeats}
        records += [
            {**common, "metric": "latency_median_ms", "value": s.median_ms},
            {**common, "metric": "latency_iqr_ms", "value": s.iqr_ms},
            {**common, "metric": "latency_min_ms", "value": s.min_ms},
        ]
        if base is not None:
            records.append({**common, "metric": "speedup_vs_disable", "value": base / s.median_ms})
    log.info("zoo_latency %s: %s", name, {lv: round(s.median_ms, 3) for lv, s in stats.items()})
    return records


def zoo_latency_grid(quick: bool = True, devices: list[str] | None = None,
                     models: list[str] | None = None) -> list[dict[str, Any]]:
    """Configs for :func:`zoo_latency`: models × threads (1, 2) × devices.

    Quick: :data:`QUICK_MODELS`, levels disable/all, 3 warm-ups, 10 repeats. Full: every zoo model,
    all four levels, 5 warm-ups, 30 repeats. ``devices`` defaults to ``['cpu']`` plus ``'cuda'`` when
    ONNX Runtime has a CUDA provider.
    """
    from xflow.graphs import zoo
    from xflow.runtime.session import available_devices

    devices = devices or available_devices()
    models = models or (list(QUICK_MODELS) if quick else zoo.list_models())
    levels = ["disable", "all"] if quick else ["disable", "basic", "extended", "all"]
    out = []
    for dev in devices:
        for m in models:
            for t in (1, 2):
                out.append({"model": m, "batch": 1, "levels": levels, "threads": t, "device": dev,
                            "warmup": 3 if quick else 5, "repeats": 10 if quick else 30})
    return out
