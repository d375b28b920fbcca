"""The per-device latency experiment: ``run(config) -> records`` (notebook, sweep, benchmark, CLI).

For one (model, batch, image size, device, mode) it autotunes the layers (convolutions, linear,
pooling; over the configured layouts), then times end to end, interleaved in one run:

* ``mode='inference'``: the untouched model (``torch``), the untouched model run channels_last
  (``torch:channels_last``, the layout alone), the model with every conv on one algorithm
  (``uniform:<algo>``, unsupported layers fall back to default) and the autotuned model;
* ``mode='train'``: one training step (forward, mean-square loss, backward, SGD update) of the
  untouched model, of the training-tuned model and, with ``also_inference_tuned``, of the model
  tuned for inference (what training would run if one tuned for the wrong mode) — all sharing one
  copy of the weights, so every step invalidates cached transforms as real training does.

It also measures numeric error (each variant's output against ``torch``'s; in training the weight
gradients of one step too, as one vector; each algorithm on each distinct conv layer against ``F.conv2d``) and
the memory the algorithms keep (``kind='memory'``: cached bytes per uniform algorithm from each
algorithm's estimate, the unbounded FFT spectra for comparison, and the autotuned model's).
Records are long-format (one metric per row).
"""
from __future__ import annotations

import copy
import logging
import warnings
from typing import Any

import torch

from xflow.algsel.algorithms import ConvConfig, get_algorithm, list_algorithms
from xflow.algsel.algorithms.fft import FFT
from xflow.algsel.autotune import TRAIN_LR, autotune, record_layers
from xflow.algsel.models import build_model
from xflow.algsel.module import AlgorithmFallbackWarning
from xflow.algsel.ops import OPS
from xflow.algsel.swap import conv_layers, swap, swap_conv2d
from xflow.runtime.measure import measure, torch_variant

__all__ = ["run", "DEFAULTS", "rel_err"]

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "model": "tiny", "batch": 1, "image": 32, "device": "cpu", "algorithms": None, "ops": list(OPS),
    "mode": "inference", "layouts": ["nchw", "channels_last"], "memory_budget": None,
    "repeats": 5, "tune_repeats": 4, "e2e_rounds": 6, "seed": 0, "uniform": True, "layer_errors": True,
    "use_cache": True, "prune_factor": 10.0, "threads": 1, "also_inference_tuned": False,
}


#: Inference choices tuned earlier in this process, per configuration (the training run's
#: ``also_inference_tuned`` reuses them instead of re-tuning: same model, shapes, device, threads).
_INFERENCE_TUNED: dict[tuple, tuple[dict[str, str], str]] = {}


def _tune_key(cfg: dict) -> tuple:
    return (cfg["model"], cfg["batch"], cfg["image"], cfg["device"], cfg["seed"], tuple(cfg["ops"]),
            tuple(cfg["layouts"]), tuple(cfg["algorithms"] or ()), cfg["memory_budget"], torch.get_num_threads())


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
    """Autotune + interleaved end-to-end timing + error and memory records for one configuration.

    Config keys (see :data:`DEFAULTS`): ``model``, ``batch``, ``image``, ``device``, ``mode``
    (``inference`` | ``train``), ``ops`` (families to tune), ``layouts``, ``memory_budget`` (bytes,
    None = the autotuner's default), ``algorithms`` (conv candidates; None = all available),
    ``repeats`` (end-to-end rounds), ``tune_repeats``, ``e2e_rounds`` (the autotuner's own
    end-to-end check), ``seed``, ``uniform`` (time uniform conv variants; inference only),
    ``layer_errors``, ``use_cache`` (autotune cache), ``prune_factor``, ``threads`` (torch
    intra-op threads while measuring; 1 keeps timings stable on a shared machine, 0 leaves
    torch's setting), ``also_inference_tuned`` (train mode: also time the inference-tuned model).
    """
    cfg = {**DEFAULTS, **config}
    before = torch.get_num_threads()
    if cfg["threads"]:
        torch.set_num_threads(int(cfg["threads"]))
    try:
        return _run(cfg)
    finally:
        torch.set_num_threads(before)


def _tune(model, x, cfg, mode):
    cands = {"conv2d": cfg["algorithms"]} if cfg["algorithms"] else None
    return autotune(model, x, cfg["device"], ops=cfg["ops"], candidates=cands, mode=mode, layouts=cfg["layouts"],
                    memory_budget=cfg["memory_budget"], repeats=cfg["tune_repeats"], e2e_rounds=cfg["e2e_rounds"],
                    use_cache=cfg["use_cache"], prune_factor=cfg["prune_factor"])


def _run(cfg: dict) -> list[dict]:
    device, mode = cfg["device"], cfg["mode"]
    algos = [get_algorithm(a).name for a in (cfg["algorithms"] or list_algorithms(device))]
    model = build_model(cfg["model"], seed=cfg["seed"]).to(device)
    gen = torch.Generator().manual_seed(cfg["seed"])
    x = torch.randn(cfg["batch"], 3, cfg["image"], cfg["image"], generator=gen).to(device)
    common = {"model": cfg["model"], "batch": cfg["batch"], "image": cfg["image"], "device_kind": device,
              "threads": torch.get_num_threads(), "mode": mode}
    records: list[dict] = []

    tune = _tune(model, x, cfg, mode)
    if mode == "inference":
        _INFERENCE_TUNED[_tune_key(cfg)] = (dict(tune.choices), tune.layout)
    for r in tune.records():
        records.append({**common, "kind": "layer", **{k: (str(v) if k == "input_shape" else v)
                                                      for k, v in r.items() if k != "mode"}})
    for k, v in (tune.e2e.get("variants") or {}).items():
        records.append({**common, "kind": "tune_e2e", "selection": k, "metric": "speedup_vs_torch",
                        "value": v["speedup"], "speedup_lo": v["speedup_ci"][0], "speedup_hi": v["speedup_ci"][1],
                        "verdict": v["verdict"], "chosen": tune.e2e.get("chosen") == k})
    records += _memory_records(model, x, tune, list_algorithms(device), common)  # estimates: every algorithm
    thr = int(cfg["threads"]) or None
    if mode == "train":
        records += _train_e2e(model, x, tune, cfg, common, thr)
    else:
        records += _inference_e2e(model, x, tune, cfg, algos, common, thr)
    if cfg["layer_errors"]:
        records += _layer_errors(model, x, algos, common, gen, device)
    return records


def _e2e_rows(meas, pilot, slow: set, names, common: dict, errs: dict[str, float], extra: dict) -> list[dict]:
    rows = []
    ref = pilot.median_ms("torch") if pilot is not None else None
    cond = meas.conditions()
    for k in names:
        row = {**common, "kind": "e2e", "selection": k, **extra.get(k, {})}
        if k in slow:
            ms = pilot.median_ms(k)
            stats = {"n_repeats": 1, "speedup_lo": None, "speedup_hi": None, "verdict": "pruned"}
            vals = {"e2e_ms": ms, "e2e_iqr_ms": 0.0, "speedup_vs_torch": ref / ms}
        else:
            c = meas.compare(k) if k != "torch" else None
            stats = {"n_repeats": meas.rounds, "speedup_lo": c.speedup_ci[0] if c else 1.0,
                     "speedup_hi": c.speedup_ci[1] if c else 1.0, "verdict": c.verdict if c else "baseline",
                     "noise_floor": meas.noise_floor(), **cond}
            vals = {"e2e_ms": meas.median_ms(k), "e2e_iqr_ms": meas.iqr_ms(k),
                    "speedup_vs_torch": c.speedup if c else 1.0}
        rows += [{**row, **stats, "metric": metric, "value": v} for metric, v in vals.items()]
        for metric, v in errs.get(k, {}).items():
            rows.append({**row, **stats, "metric": metric, "value": v})
    return rows


def _inference_e2e(model, x, tune, cfg, algos, common, thr) -> list[dict]:
    device = cfg["device"]
    variants = {"torch": model, "torch:channels_last": swap(model, layout="channels_last"), "autotuned": tune.model}
    if cfg["uniform"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AlgorithmFallbackWarning)
            for a in algos:
                variants[f"uniform:{a}"] = swap_conv2d(model, a)
    extra = {"autotuned": {"layout": tune.layout}}
    with torch.no_grad():
        outs = {k: m(x) for k, m in variants.items()}
        fns = {k: torch_variant(lambda m=m: m(x), threads=thr, device=device) for k, m in variants.items()}
        if device.startswith("cuda"):  # the framework's own per-shape autotuner, for comparison
            outs["torch+cudnn.benchmark"] = outs["torch"]
            fns["torch+cudnn.benchmark"] = torch_variant(lambda: _with_cudnn_benchmark(model, x), device=device)
        # hopeless variants (prune_factor × slower than torch in a pilot round) are timed once only
        pilot = measure(fns, baseline="torch", aa=False, warmup=1, rounds=1, inner=1)
        ref = pilot.median_ms("torch")
        slow = {k for k in fns if k not in ("torch", "autotuned") and cfg["prune_factor"]
                and pilot.median_ms(k) > cfg["prune_factor"] * ref}
        meas = measure({k: f for k, f in fns.items() if k not in slow}, baseline="torch", warmup=1,
                       rounds=cfg["repeats"])
    errs = {k: {"max_rel_err": rel_err(outs[k], outs["torch"]), "output_std": float(outs[k].std())} for k in fns}
    return _e2e_rows(meas, pilot, slow, list(fns), common, errs, extra)


def _train_e2e(model, x, tune, cfg, common, thr) -> list[dict]:
    device = cfg["device"]
    base = copy.deepcopy(model).train()
    params = [p for p in base.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=TRAIN_LR)
    variants = {"torch": base, "autotuned": tune.apply(base)}
    extra = {"autotuned": {"layout": tune.layout}}
    if cfg["also_inference_tuned"]:
        if _tune_key(cfg) not in _INFERENCE_TUNED:
            inf = _tune(model, x, cfg, "inference")
            _INFERENCE_TUNED[_tune_key(cfg)] = (dict(inf.choices), inf.layout)
        inf_choices, inf_layout = _INFERENCE_TUNED[_tune_key(cfg)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AlgorithmFallbackWarning)
            variants["inference-tuned"] = swap(base, layers=inf_choices, layout=inf_layout)
        extra["inference-tuned"] = {"layout": inf_layout}
    # numeric check: one step's loss and weight gradients against torch's, from identical weights
    errs = {}
    ref_grads = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AlgorithmFallbackWarning)
        for k, m in variants.items():
            opt.zero_grad(set_to_none=True)
            torch.manual_seed(cfg["seed"])  # the same dropout masks for every variant (VGG16's classifier)
            out = m(x)
            out.float().square().mean().backward()
            grads = torch.cat([p.grad.detach().flatten() for p in params])
            if ref_grads is None:
                ref_out, ref_grads = out.detach(), grads
            errs[k] = {"max_rel_err": rel_err(out.detach(), ref_out),
                       # over the whole gradient vector: a conv bias before batch norm has a gradient
                       # that is exactly 0 in exact arithmetic, i.e. pure rounding noise on its own
                       "grad_max_rel_err": rel_err(grads, ref_grads),
                       "output_std": float(out.detach().std())}
        opt.zero_grad(set_to_none=True)

        def step(m):
            opt.zero_grad(set_to_none=True)
            m(x).float().square().mean().backward()
            opt.step()
        fns = {k: torch_variant(lambda m=m: step(m), threads=thr, device=device) for k, m in variants.items()}
        meas = measure(fns, baseline="torch", warmup=1, rounds=cfg["repeats"])
    return _e2e_rows(meas, None, set(), list(fns), common, errs, extra)


def _memory_records(model, x, tune, algos, common) -> list[dict]:
    """Bytes each uniform conv algorithm keeps for cached transforms (its own estimate), the FFT's
    unbounded spectra, the autotuned model's cached bytes, and the conv/all parameter bytes."""
    sites = [s for s in record_layers(model, x, ("conv2d",))]
    itemsize = x.element_size()
    rows = []

    def add(what, value):
        rows.append({**common, "kind": "memory", "selection": what, "metric": "bytes", "value": int(value)})

    add("params:conv", sum(s.module.weight.numel() * itemsize for s in sites))
    add("params:all", sum(p.numel() * p.element_size() for p in model.parameters()))
    for a in algos:
        alg = get_algorithm(a)
        add(f"uniform:{a}", sum(alg.memory(s.config, s.shape, itemsize).cached for s in sites
                                if alg.supports(s.config) is None))
    add("fft:unbounded", sum(FFT.spectrum_bytes(s.config, s.shape) for s in sites))
    add("fft:largest_layer", max((FFT.spectrum_bytes(s.config, s.shape) for s in sites), default=0))
    add("autotuned", tune.cached_bytes)
    add("budget", tune.memory_budget)
    return rows


def _layer_errors(model, x, algos, common, gen, device) -> list[dict]:
    rows = []
    seen = set()
    shapes = {s.name: s.shape for s in record_layers(model, x, ("conv2d",))}
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
                rows.append({**common, "kind": "layer", "layer": name, "op": "conv2d", "config": c.short(),
                             "input_shape": str(list(shapes[name])), "algorithm": a,
                             "metric": "layer_max_rel_err", "value": rel_err(y, ref)})
    return rows
