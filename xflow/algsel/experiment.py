"""The per-device latency experiment: ``run(config) -> records`` (notebook, sweep, benchmark, CLI).

For one (model, batch, image size, device) it autotunes the convolutions, then times end to end,
interleaved in one run: the untouched model (``torch``), the model with every conv on one algorithm
(``uniform:<algo>``, unsupported layers fall back to default) and the autotuned model. It also
measures numeric error: each variant's output against ``torch``'s, and each algorithm on each
distinct layer against ``F.conv2d``. Records are long-format (one metric per row).
"""
from __future__ import annotations

import logging
import warnings
from typing import Any

import torch

from xflow.algsel.algorithms import ConvConfig, get_algorithm, list_algorithms
from xflow.algsel.autotune import autotune, layer_input_shapes
from xflow.algsel.models import build_model
from xflow.algsel.module import AlgorithmFallbackWarning
from xflow.algsel.swap import conv_layers, swap_conv2d
from xflow.runtime.measure import measure, torch_variant

__all__ = ["run", "DEFAULTS", "rel_err"]

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "model": "tiny", "batch": 1, "image": 32, "device": "cpu", "algorithms": None,
    "repeats": 5, "tune_repeats": 4, "seed": 0, "uniform": True, "layer_errors": True,
    "use_cache": True, "prune_factor": 10.0, "threads": 1,
}


def rel_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    """``max|y − ref| / max|ref|`` (scale-free error used in every error table)."""
    return float((y - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


def _with_cudnn_benchmark(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    flag = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        return model(x)
    finally:
        torch.backends.cudnn.benchmark = flag


def run(config: dict) -> list[dict]:
    """Autotune + interleaved end-to-end timing + error measurement for one configuration.

    Config keys (see :data:`DEFAULTS`): ``model``, ``batch``, ``image``, ``device``,
    ``algorithms`` (None = all registered), ``repeats`` (end-to-end rounds), ``tune_repeats``,
    ``seed``, ``uniform`` (time uniform variants), ``layer_errors``, ``use_cache`` (autotune cache),
    ``prune_factor`` (stop repeating variants this many times slower than torch), ``threads``
    (torch intra-op threads while measuring; 1 keeps timings stable on a shared machine, 0 leaves
    torch's setting).
    """
    cfg = {**DEFAULTS, **config}
    before = torch.get_num_threads()
    if cfg["threads"]:
        torch.set_num_threads(int(cfg["threads"]))
    try:
        return _run(cfg)
    finally:
        torch.set_num_threads(before)


def _run(cfg: dict) -> list[dict]:
    device = cfg["device"]
    algos = [get_algorithm(a).name for a in (cfg["algorithms"] or list_algorithms())]
    model = build_model(cfg["model"], seed=cfg["seed"]).to(device)
    gen = torch.Generator().manual_seed(cfg["seed"])
    x = torch.randn(cfg["batch"], 3, cfg["image"], cfg["image"], generator=gen).to(device)
    common = {"model": cfg["model"], "batch": cfg["batch"], "image": cfg["image"], "device_kind": device,
              "threads": torch.get_num_threads()}
    records: list[dict] = []

    tune = autotune(model, x, device, candidates=algos, repeats=cfg["tune_repeats"],
                    use_cache=cfg["use_cache"])
    for r in tune.records():
        records.append({**common, "kind": "layer", **{k: (str(v) if k == "input_shape" else v)
                                                      for k, v in r.items()}})

    variants = {"torch": model, "autotuned": tune.model}
    if cfg["uniform"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AlgorithmFallbackWarning)
            for a in algos:
                variants[f"uniform:{a}"] = swap_conv2d(model, a)
    thr = int(cfg["threads"]) or None
    with torch.no_grad():
        outs = {k: m(x) for k, m in variants.items()}
        fns = {k: torch_variant(lambda m=m: m(x), threads=thr, device=device) for k, m in variants.items()}
        if device.startswith("cuda"):  # the framework's own per-shape autotuner, for comparison
            outs["torch+cudnn.benchmark"] = outs["torch"]
            fns["torch+cudnn.benchmark"] = torch_variant(lambda: _with_cudnn_benchmark(model, x), device=device)
        # hopeless variants (prune_factor × slower than torch in a pilot round) are timed once only
        pilot = measure(fns, baseline="torch", aa=False, warmup=1, rounds=1, inner=1)
        ref = pilot.median_ms("torch", "wall")
        slow = {k for k in fns if k != "torch" and cfg["prune_factor"]
                and pilot.median_ms(k, "wall") > cfg["prune_factor"] * ref}
        meas = measure({k: f for k, f in fns.items() if k not in slow}, baseline="torch", warmup=1,
                       rounds=cfg["repeats"])
    cond = meas.conditions()
    for k in fns:
        row = {**common, "kind": "e2e", "selection": k}
        if k in slow:
            ms = pilot.median_ms(k, "wall")
            stats = {"n_repeats": 1, "speedup_lo": None, "speedup_hi": None, "verdict": "pruned"}
            vals = {"e2e_ms": ms, "e2e_iqr_ms": 0.0, "speedup_vs_torch": ref / ms}
        else:
            c = meas.compare(k) if k != "torch" else None
            stats = {"n_repeats": meas.rounds, "speedup_lo": c.speedup_ci[0] if c else 1.0,
                     "speedup_hi": c.speedup_ci[1] if c else 1.0, "verdict": c.verdict if c else "baseline",
                     "noise_floor": meas.noise_floor(), **cond}
            vals = {"e2e_ms": meas.median_ms(k), "e2e_iqr_ms": meas.iqr_ms(k),
                    "speedup_vs_torch": c.speedup if c else 1.0}
        records += [{**row, **stats, "metric": metric, "value": v} for metric, v in vals.items()]
        records.append({**row, **stats, "metric": "max_rel_err", "value": rel_err(outs[k], outs["torch"])})

    if cfg["layer_errors"]:
        shapes = layer_input_shapes(model, x)
        seen = set()
        for name, conv in conv_layers(model):
            c = ConvConfig.from_module(conv)
            if name not in shapes or (c, shapes[name]) in seen:
                continue
            seen.add((c, shapes[name]))
            xin = torch.randn(shapes[name], generator=gen).to(device)
            if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
                mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
                xin = torch.nn.functional.pad(xin, conv._reversed_padding_repeated_twice, mode=mode)
            with torch.no_grad():
                ref = torch.nn.functional.conv2d(xin, conv.weight, conv.bias, c.stride, c.padding,
                                                 c.dilation, c.groups)
                for a in algos:
                    alg = get_algorithm(a)
                    if alg.supports(c) is not None:
                        continue
                    y = alg.conv2d(xin, conv.weight, conv.bias, c.stride, c.padding, c.dilation, c.groups)
                    records.append({**common, "kind": "layer", "layer": name, "config": c.short(),
                                    "input_shape": str(list(shapes[name])), "algorithm": a,
                                    "metric": "layer_max_rel_err", "value": rel_err(y, ref)})
    return records
