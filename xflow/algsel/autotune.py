"""``autotune``: measure every applicable algorithm per conv layer on one device; switch a layer only
on a significant win.

For each ``nn.Conv2d`` the input shape is recorded with a forward hook on ``example_input``; each
distinct (layer configuration, input shape) is then timed once per candidate algorithm on a random
input of that shape (inference, no grad) with the measurement core (:mod:`xflow.runtime.measure`):
warm-up, interleaved shuffled rounds, an A/A control of ``default``, thread CPU time deciding at one
thread. A layer switches away from ``default`` only when a candidate's verdict is ``faster``: its
paired interval lies below 1 at level ``1 - alpha / k`` for ``k`` candidates (Bonferroni) and its
effect exceeds both the A/A noise floor and ``min_gain``; otherwise the layer keeps ``default``
(and stays a plain ``nn.Conv2d``). Hopeless candidates (warm-up ``prune_factor`` × slower than
``default``) are not timed further.

Choices are cached on disk per (cache version, device, torch version, threads, layer configuration,
input shape, candidate set) in ``cache_dir('algsel')/autotune.json`` with each candidate's ratio,
interval and the noise floor, so re-tuning the same model is instant and the decision is re-derived
from the stored evidence under the current ``min_gain``. *Doubtful* entries — measured on a busy
machine, or whose best candidate's interval straddles the ``min_gain`` threshold — are re-measured
(once more, with twice the rounds); entries of an older cache version are never served.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xflow import paths
from xflow.algsel.algorithms import ConvConfig, get_algorithm, list_algorithms
from xflow.algsel.swap import conv_layers, swap_conv2d
from xflow.errors import DeviceUnavailable, XflowError
from xflow.runtime.measure import measure, torch_variant
from xflow.runtime.stats import Effect, verdict

__all__ = ["autotune", "TuneResult", "layer_input_shapes", "default_cache_path", "load_cache",
           "CACHE_VERSION", "decide"]

log = logging.getLogger(__name__)

#: Version of the cache entries' format and decision rule; older entries are ignored.
CACHE_VERSION = 2
#: Re-measure a doubtful entry at most this many times.
MAX_ATTEMPTS = 2


def default_cache_path() -> Path:
    """``cache_dir('algsel')/autotune.json``."""
    return paths.cache_dir("algsel") / "autotune.json"


def load_cache(path: Path | None = None) -> dict[str, Any]:
    """The on-disk choice cache (empty dict if absent or unreadable)."""
    path = path or default_cache_path()
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def _save_cache(entries: dict[str, Any], path: Path) -> None:
    merged = load_cache(path)
    merged.update(entries)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(merged, f, sort_keys=True, indent=0)
    os.replace(tmp, path)


def layer_input_shapes(model: nn.Module, example_input: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Input shape of every conv layer for ``example_input`` (one no-grad forward with hooks)."""
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    for name, m in conv_layers(model):
        def hook(mod, inp, _out, name=name):
            shapes.setdefault(name, tuple(inp[0].shape))
        handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(example_input)
    finally:
        for h in handles:
            h.remove()
    return shapes


@dataclass
class TuneResult:
    """What :func:`autotune` returns.

    Attributes:
        model (nn.Module): the tuned copy (shares weights with the input model on the same device).
        choices (dict[str, str]): ``{layer: algorithm}``; pass it to :func:`swap_conv2d` to replay.
        report (pandas.DataFrame): one row per conv layer: configuration, input shape, the median
            ms of each candidate (NaN where unsupported), choice, its speed-up over default with the
            interval and verdict, whether the entry came from the cache.
        device (str): the device tuned for; ``device_label`` the machine descriptor.
    """

    model: nn.Module
    choices: dict[str, str]
    report: Any
    device: str
    device_label: str
    rows: list[dict] = field(default_factory=list)

    def records(self) -> list[dict]:
        """Long-format records (one metric per row) for :func:`xflow.results.write_records`:
        ``layer_median_ms`` per algorithm with its ratio to ``default``, interval and verdict."""
        out = []
        for r in self.rows:
            base = {"layer": r["layer"], "config": r["config"], "input_shape": r["input_shape"],
                    "choice": r["choice"], "cached": r["cached"], "noise_floor": r["noise_floor"]}
            for algo, ms in r["times_ms"].items():
                c = r["comparisons"].get(algo, {"ratio": 1.0, "ci": [1.0, 1.0], "verdict": "baseline"})
                ci = c["ci"] or [None, None]
                out.append({**base, "algorithm": algo, "metric": "layer_median_ms", "value": ms,
                            "ratio": c["ratio"], "ci_lo": ci[0], "ci_hi": ci[1],
                            "verdict": c["verdict"] or "pruned"})
        return out

    def to_json(self) -> dict:
        """Replayable record: device, choices and per-layer timings."""
        return {"device": self.device, "device_label": self.device_label, "choices": self.choices,
                "layers": self.rows}

    def save(self, path: Path | str) -> Path:
        """Write :meth:`to_json` to ``path``; replay with
        ``swap_conv2d(model, json.load(open(path))["choices"])``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1, default=str))
        return path


def _key(device_label: str, device: str, cfg: ConvConfig, shape: tuple, cands: list[str]) -> str:
    blob = json.dumps({"version": CACHE_VERSION, "device": device_label, "kind": device.split(":")[0],
                       "torch": torch.__version__, "threads": torch.get_num_threads(), "cfg": cfg.as_dict(),
                       "shape": list(shape), "candidates": sorted(cands)}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:20]


def decide(entry: dict[str, Any], min_gain: float) -> tuple[str, dict[str, str]]:
    """``(choice, {algorithm: verdict})`` from a measured entry: the lowest-ratio candidate whose
    verdict against ``default`` is ``faster`` at the stored (Bonferroni-adjusted) level, else ``default``."""
    floor = float(entry.get("noise_floor", 0.0))
    verdicts: dict[str, str] = {}
    best, best_ratio = "default", 1.0
    for algo, c in entry["candidates"].items():
        if algo == "default" or c.get("ratio") is None:
            continue
        eff = Effect(float(c["ratio"]), (float(c["ci"][0]), float(c["ci"][1])), int(c.get("rounds", 2)),
                     float(c.get("level", 0.95)))
        v = verdict(eff, floor=floor, min_effect=min_gain)
        verdicts[algo] = v
        if v == "faster" and eff.ratio < best_ratio:
            best, best_ratio = algo, eff.ratio
    return best, verdicts


def _doubtful(entry: dict[str, Any], min_gain: float) -> bool:
    """Measured on a busy machine, or the best candidate's interval straddles ``min_gain``."""
    if entry.get("conditions", {}).get("busy"):
        return True
    threshold = 1.0 / (1.0 + min_gain)
    cands = [c for a, c in entry["candidates"].items() if a != "default" and c.get("ratio") is not None]
    if not cands:
        return False
    top = min(cands, key=lambda c: c["ratio"])
    return top["ci"][0] < threshold < top["ci"][1]


def _valid_entry(entry: Any) -> bool:
    return (isinstance(entry, dict) and entry.get("version") == CACHE_VERSION
            and isinstance(entry.get("candidates"), dict) and "default" in entry["candidates"])


def _measure_layer(fns: dict[str, Any], *, rounds: int, warmup: int, device: str, prune_factor: float | None,
                   alpha: float, threads: int) -> dict[str, Any]:
    """Time ``fns`` (``default`` first) with the measurement core; the cache entry for one layer."""
    variants = {c: torch_variant(f, threads=threads, device=device) for c, f in fns.items()}
    pruned: dict[str, float] = {}
    if prune_factor and len(variants) > 1:
        pilot = measure(variants, baseline="default", aa=False, warmup=0, rounds=1, inner=1)
        ref = pilot.median_ms("default", "wall")
        for c in list(variants):
            t = pilot.median_ms(c, "wall")
            if c != "default" and t > prune_factor * ref:
                pruned[c] = t
                del variants[c]
    with torch.no_grad():
        m = measure(variants, baseline="default", warmup=warmup, rounds=rounds)
    k = max(1, len(variants) - 1)
    adj = alpha / k
    cands: dict[str, dict[str, Any]] = {"default": {"median_ms": m.median_ms("default"), "ratio": 1.0,
                                                    "ci": [1.0, 1.0], "rounds": m.rounds, "level": 1 - adj}}
    for c in variants:
        if c == "default":
            continue
        cmp = m.compare(c, alpha=adj)
        cands[c] = {"median_ms": m.median_ms(c), "ratio": cmp.ratio, "ci": list(cmp.ci), "rounds": cmp.rounds,
                    "level": cmp.level}
    for c, t in pruned.items():
        cands[c] = {"median_ms": t, "ratio": None, "ci": None, "pruned": True}
    return {"version": CACHE_VERSION, "candidates": cands, "noise_floor": m.noise_floor(level=1 - adj),
            "clock": m.clock, "conditions": m.conditions(), "warnings": m.warnings}


def autotune(
    model: nn.Module,
    example_input: torch.Tensor,
    device: str = "cpu",
    *,
    candidates: list[str] | None = None,
    repeats: int = 10,
    warmup: int = 2,
    use_cache: bool = True,
    refresh: bool = False,
    cache_path: Path | None = None,
    prune_factor: float | None = 20.0,
    min_gain: float = 0.05,
    alpha: float = 0.05,
) -> TuneResult:
    """Pick, per conv layer of ``model`` on ``device``, the algorithm that is significantly fastest.

    Args:
        model (nn.Module): the model (not modified; on another device it is copied there).
        example_input (Tensor): a representative input (its shape decides each layer's shape).
        device (str, optional): ``'cpu'`` or ``'cuda[:i]'``. (default: :obj:`'cpu'`)
        candidates (list[str], optional): algorithms to consider (``default`` is always added).
        repeats, warmup (int, optional): interleaved timed rounds (>= 2) and warm-up calls per layer.
            (default: 10, 2)
        use_cache / refresh (bool, optional): read/write the on-disk choice cache / re-measure hits.
        prune_factor (float, optional): drop a candidate whose first call is this many times slower
            than ``default``. (default: 20)
        min_gain (float, optional): smallest relative gain that counts; a candidate must be faster by
            more than this *and* than the A/A noise floor, with an interval below 1. (default: 0.05)
        alpha (float, optional): family-wise error rate per layer (Bonferroni over candidates).

    The report's ``<algo>_ms`` columns are medians on the deciding clock; ``speedup`` and
    ``speedup_lo``/``speedup_hi`` are the choice's speed-up over ``default`` with its interval
    (1 when ``default`` is kept), ``verdict`` the choice's verdict.

    Raises:
        DeviceUnavailable: ``device`` is CUDA but no GPU is visible.
        UnknownName: an unknown candidate name.
    """
    import pandas as pd

    from xflow.runtime.device import describe_device

    if repeats < 2:
        raise XflowError(f"autotune: repeats must be >= 2 (an interval needs two rounds), got {repeats}")
    if not (math.isfinite(min_gain) and min_gain >= 0) or not (0 < alpha < 1):
        raise XflowError(f"autotune: min_gain must be >= 0 and alpha in (0, 1), got {min_gain}, {alpha}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailable(f"device {device!r} requested but torch sees no CUDA GPU; use device='cpu'")
    cands = [get_algorithm(c).name for c in (candidates or list_algorithms())]
    if "default" not in cands:
        cands.insert(0, "default")
    cands = list(dict.fromkeys(["default"] + cands))
    label = describe_device(device).label()
    params = list(model.parameters())
    want = torch.device(device)
    if params and (params[0].device.type != want.type
                   or (want.index is not None and params[0].device.index != want.index)):
        model = copy.deepcopy(model).to(device)
    model_was_training = model.training
    model.eval()
    x = example_input.to(device)
    shapes = layer_input_shapes(model, x)
    cache_path = Path(cache_path) if cache_path else default_cache_path()
    cache = load_cache(cache_path) if use_cache else {}
    threads = torch.get_num_threads()
    new_entries: dict[str, Any] = {}
    measured: dict[str, dict] = {}
    rows = []
    gen = torch.Generator(device="cpu").manual_seed(0)
    for name, conv in conv_layers(model):
        if name not in shapes:
            log.info("conv %s not reached by example_input; left as default", name)
            continue
        cfg, shape = ConvConfig.from_module(conv), shapes[name]
        applicable = [c for c in cands if get_algorithm(c).supports(cfg) is None]
        key = _key(label, device, cfg, shape, cands)
        if key not in measured:
            hit = cache.get(key) if use_cache and not refresh else None
            if hit is not None and not _valid_entry(hit):
                log.warning("autotune cache entry %s in %s is stale or corrupt; re-measuring", key, cache_path)
                hit = None
            if hit is not None and _doubtful(hit, min_gain) and hit.get("attempts", 1) < MAX_ATTEMPTS:
                log.info("autotune cache entry %s is doubtful; re-measuring with %d rounds", key, 2 * repeats)
                attempts, rounds = hit.get("attempts", 1) + 1, 2 * repeats
                hit = None
            else:
                attempts, rounds = 1, repeats
            if hit is not None:
                measured[key] = {**hit, "cached": True}
            else:
                xin = torch.randn(shape, generator=gen).to(device)
                if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
                    xin = torch.nn.functional.pad(xin, conv._reversed_padding_repeated_twice,
                                                  mode="constant" if conv.padding_mode == "zeros" else conv.padding_mode)
                w, b = conv.weight.detach(), None if conv.bias is None else conv.bias.detach()
                # each candidate with its own state: timed as deployed (weight transforms cached)
                fns = {c: (lambda a=get_algorithm(c), st={}: a.conv2d(
                    xin, w, b, cfg.stride, cfg.padding, cfg.dilation, cfg.groups, st)) for c in applicable}
                entry = _measure_layer(fns, rounds=rounds, warmup=warmup, device=device,
                                       prune_factor=prune_factor, alpha=alpha, threads=threads)
                entry["attempts"] = attempts
                measured[key] = {**entry, "cached": False}
                new_entries[key] = entry
        m = measured[key]
        best, verdicts = decide(m, min_gain)
        cm = m["candidates"]
        ratio = float(cm[best]["ratio"]) if best != "default" else 1.0
        ci = cm[best]["ci"] if best != "default" else [1.0, 1.0]
        unsupported = {c: get_algorithm(c).supports(cfg) for c in cands if c not in applicable}
        rows.append({
            "layer": name, "config": cfg.short(), "input_shape": list(shape), "choice": best,
            "default_ms": cm["default"]["median_ms"], "best_ms": cm[best]["median_ms"],
            "speedup": 1.0 / ratio, "speedup_lo": 1.0 / ci[1], "speedup_hi": 1.0 / ci[0],
            "verdict": "faster" if best != "default" else "same", "noise_floor": m.get("noise_floor", 0.0),
            "cached": m["cached"], "busy": bool(m.get("conditions", {}).get("busy")),
            "times_ms": {c: v["median_ms"] for c, v in cm.items()},
            "comparisons": {c: {"ratio": v["ratio"], "ci": v["ci"], "verdict": verdicts.get(c)}
                            for c, v in cm.items() if c != "default"},
            "unsupported": {c: r for c, r in unsupported.items()},
        })
    if not rows:
        raise XflowError("the model has no Conv2d layer reached by example_input; nothing to tune")
    if use_cache and new_entries:
        _save_cache(new_entries, cache_path)
    choices = {r["layer"]: r["choice"] for r in rows}
    # layers that keep ``default`` stay plain nn.Conv2d: no wrapper overhead at all
    tuned = swap_conv2d(model, {k: v for k, v in choices.items() if v != "default"})
    model.train(model_was_training)
    tuned.train(model_was_training)
    frame_rows = []
    for r in rows:
        fr = {k: v for k, v in r.items() if k not in ("times_ms", "comparisons", "unsupported")}
        fr["input_shape"] = "×".join(map(str, r["input_shape"]))
        for c in cands:
            fr[f"{c}_ms"] = r["times_ms"].get(c, float("nan"))
        fr["why_not"] = "; ".join(f"{c}: {why}" for c, why in r["unsupported"].items())
        frame_rows.append(fr)
    report = pd.DataFrame(frame_rows)
    return TuneResult(model=tuned, choices=choices, report=report, device=device, device_label=label, rows=rows)
