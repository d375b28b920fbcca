"""``autotune``: measure every applicable algorithm per layer on one device, for inference or for
training; switch a layer only on a significant win; pick the model-wide layout end to end.

**Per layer.** For each layer of the tuned families (:mod:`xflow.algsel.ops`: convolutions, linear
layers, pooling) the input shape, memory layout and whether the input carries a gradient are
recorded with forward hooks on ``example_input``; each distinct (family, configuration, shape,
layout, mode) is then timed once per candidate algorithm with the measurement core
(:mod:`xflow.runtime.measure`: warm-up, interleaved shuffled rounds, an A/A control of
``default``, thread CPU time deciding at one thread). What is timed is what the deployed model
runs: the swapped *module* on a random input of that shape and layout —

* ``mode='inference'``: the forward under ``no_grad``, cached weight transforms reused across calls;
* ``mode='train'``: one training step of the layer — forward, backward with a fixed output
  gradient, and an SGD update of its parameters. The update bumps the weights' version counters,
  so cached filter transforms (Winograd, FFT, packed layouts) are recomputed once per step, as in
  training; inference-only algorithms are not candidates.

A layer switches away from ``default`` only when a candidate's verdict is ``faster``: its paired
interval lies below 1 at level ``1 - alpha / k`` for ``k`` candidates (Bonferroni) and its effect
exceeds both the A/A noise floor and ``min_gain``; otherwise the layer keeps ``default`` (and stays
the framework's own module). Hopeless candidates (``prune_factor`` × slower than ``default`` in a
pilot call) are not timed further.

**Memory budget.** Each algorithm estimates the bytes it keeps across calls (cached transforms)
and its transient workspace (:meth:`~xflow.algsel.algorithms.ConvAlgorithm.memory`). Candidates
whose cached + workspace bytes for one layer exceed ``memory_budget`` are skipped; if the chosen
algorithms together keep more than the budget, the layers with the smallest time saved per byte
are moved to their next-best significant candidate that keeps less (or ``default``) until the
total fits. The default budget is :data:`BUDGET_FACTOR` × the model's parameter bytes.

**Layouts, end to end.** With several ``layouts`` (``nchw``, ``channels_last``) every layer is tuned
in each; the tuned models and the untouched model are then timed end to end in one interleaved
run (forward, or a full training step with an SGD update on a copy of the weights). A layout other
than the first is taken only when it is significantly faster than the first layout's tuned model;
and the tuned model is replaced by the untouched one when it is significantly *slower* than it
(``guard``) — so the result is never slower than the framework by the measurement's verdict.

Per-layer entries are cached on disk per (cache version, device, torch version, threads, family,
configuration, shape, layout, mode, input-gradient, candidate set) in
``cache_dir('algsel')/autotune.json`` with each candidate's ratio, interval and the noise floor,
so re-tuning is fast and decisions are re-derived from the stored evidence under the current
``min_gain``. *Doubtful* entries — measured on a busy machine, or whose best candidate's interval
straddles the ``min_gain`` threshold — are re-measured (once more, with twice the rounds);
entries of an older cache version are never served.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xflow import paths
from xflow.algsel.ops import FAMILIES, LAYOUTS, OPS, OpFamily, family, set_layout
from xflow.algsel.swap import swap
from xflow.errors import DeviceUnavailable, UnknownName, XflowError
from xflow.runtime.device import describe_device
from xflow.runtime.measure import measure, torch_variant
from xflow.runtime.stats import Effect, verdict
from xflow.safeio import atomic_write_json, file_lock, read_checked_json, write_checked_json

__all__ = ["autotune", "TuneResult", "layer_input_shapes", "record_layers", "LayerSite", "default_cache_path",
           "load_cache", "CACHE_VERSION", "decide", "MODES", "BUDGET_FACTOR", "TRAIN_LR", "train_step"]

log = logging.getLogger(__name__)

#: Version of the cache entries' format and decision rule; older entries are ignored.
CACHE_VERSION = 3
#: Re-measure a doubtful entry at most this many times.
MAX_ATTEMPTS = 2
#: What is tuned for.
MODES = ("inference", "train")
#: Default memory budget: this many times the model's parameter bytes.
BUDGET_FACTOR = 2.0
#: Learning rate of the SGD update inside a timed training step (its value does not matter for
#: timing; the update does: it invalidates cached weight transforms as real training does).
TRAIN_LR = 1e-6


def default_cache_path() -> Path:
    """``cache_dir('algsel')/autotune.json``."""
    return paths.cache_dir("algsel") / "autotune.json"


def load_cache(path: Path | None = None) -> dict[str, Any]:
    """The on-disk choice cache (empty dict if absent; a corrupt file is reported and removed)."""
    data = read_checked_json(Path(path or default_cache_path()))
    return data if isinstance(data, dict) else {}


def _save_cache(entries: dict[str, Any], path: Path) -> None:
    """Merge ``entries`` into the cache file: locked read-merge-write, atomic, content-checked."""
    with file_lock(path):
        merged = load_cache(path)
        merged.update(entries)
        write_checked_json(path, merged, sort_keys=True, indent=0)


@dataclass
class LayerSite:
    """One tunable layer as the model uses it: family, module, configuration and its input."""

    name: str
    op: str
    module: nn.Module
    config: Any
    shape: tuple[int, ...]
    channels_last: bool
    input_grad: bool


def record_layers(model: nn.Module, example_input: torch.Tensor, ops: Sequence[str] = OPS, *,
                  mode: str = "inference") -> list[LayerSite]:
    """Every layer of ``ops`` reached by ``example_input``: its input shape, whether the input is
    ``channels_last`` and (``mode='train'``) whether it requires grad. One forward with hooks, in
    eval mode (no batch-norm statistics change); layers reached twice keep their first input."""
    sites: dict[str, LayerSite] = {}
    handles = []
    for op in ops:
        fam = family(op)
        for name, m in fam.layers(model):
            def hook(mod, inp, _out, name=name, fam=fam):
                x = inp[0]
                if name not in sites and isinstance(x, torch.Tensor):
                    cl = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
                    sites[name] = LayerSite(name, fam.name, mod, fam.config_of(mod), tuple(x.shape), cl,
                                            bool(x.requires_grad))
            handles.append(m.register_forward_hook(hook))
    was = model.training
    model.eval()
    try:
        with torch.set_grad_enabled(mode == "train"):
            model(example_input)
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    order = {n: i for i, (n, _) in enumerate(model.named_modules())}
    return sorted(sites.values(), key=lambda s: order[s.name])


def layer_input_shapes(model: nn.Module, example_input: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Input shape of every conv layer for ``example_input`` (one no-grad forward with hooks)."""
    return {s.name: s.shape for s in record_layers(model, example_input, ("conv2d",))}


@dataclass
class TuneResult:
    """What :func:`autotune` returns.

    Attributes:
        model (nn.Module): the tuned copy (shares weights with the input model on the same device).
        choices (dict[str, str]): ``{layer: algorithm}`` across families; replay with :meth:`apply`
            or ``swap(model, layers=choices, layout=layout)``.
        layout (str): the model-wide layout chosen (``nchw`` or ``channels_last``).
        mode (str): ``inference`` or ``train``.
        report (pandas.DataFrame): one row per layer (chosen layout): family, configuration, input
            shape, the median ms of each candidate (NaN where not applicable), choice, its speed-up
            over default with the interval, cached bytes, whether the entry came from the cache.
        e2e (dict): the end-to-end comparison behind the layout choice and the guard:
            ``{variant: {ratio, ci, verdict, median_ms}}`` against the untouched model.
        device (str): the device tuned for; ``device_label`` the machine descriptor.
    """

    model: nn.Module
    choices: dict[str, str]
    report: Any
    device: str
    device_label: str
    rows: list[dict] = field(default_factory=list)
    layout: str = "nchw"
    mode: str = "inference"
    e2e: dict[str, Any] = field(default_factory=dict)
    memory_budget: int = 0
    layout_rows: dict[str, list[dict]] = field(default_factory=dict)

    def apply(self, model: nn.Module, **kw: Any) -> nn.Module:
        """``model`` swapped to these choices and layout (:func:`~xflow.algsel.swap.swap`)."""
        return swap(model, layers=self.choices, layout=self.layout, **kw)

    @property
    def cached_bytes(self) -> int:
        """Bytes the tuned model keeps for cached transforms (the memory budget's subject)."""
        return int(sum(r["cached_bytes"] for r in self.rows))

    def records(self) -> list[dict]:
        """Long-format records (one metric per row) for :func:`xflow.results.write_records`:
        ``layer_median_ms`` per layer, layout and algorithm with its ratio to ``default``,
        interval and verdict."""
        out = []
        for layout, rows in (self.layout_rows or {self.layout: self.rows}).items():
            for r in rows:
                base = {"layer": r["layer"], "op": r["op"], "config": r["config"], "input_shape": r["input_shape"],
                        "choice": r["choice"], "cached": r["cached"], "noise_floor": r["noise_floor"],
                        "layout": layout, "mode": self.mode, "chosen_layout": layout == self.layout,
                        "cached_bytes": r["cached_bytes"]}
                for algo, ms in r["times_ms"].items():
                    c = r["comparisons"].get(algo, {"ratio": 1.0, "ci": [1.0, 1.0], "verdict": "baseline"})
                    ci = c["ci"] or [None, None]
                    out.append({**base, "algorithm": algo, "metric": "layer_median_ms", "value": ms,
                                "ratio": c["ratio"], "ci_lo": ci[0], "ci_hi": ci[1],
                                "verdict": c["verdict"] or "pruned"})
        return out

    def to_json(self) -> dict:
        """Replayable record: device, mode, layout, choices, per-layer timings, end-to-end check."""
        return {"device": self.device, "device_label": self.device_label, "mode": self.mode, "layout": self.layout,
                "choices": self.choices, "e2e": self.e2e, "memory_budget": self.memory_budget,
                "cached_bytes": self.cached_bytes, "layers": self.rows}

    def save(self, path: Path | str) -> Path:
        """Write :meth:`to_json` to ``path``; replay with
        ``swap_conv2d(model, json.load(open(path))["choices"])``."""
        return atomic_write_json(path, self.to_json(), indent=1, default=str)


def _key(device_label: str, device: str, site: LayerSite, cands: list[str], mode: str, threads: int) -> str:
    blob = json.dumps({"version": CACHE_VERSION, "device": device_label, "kind": device.split(":")[0],
                       "torch": torch.__version__, "threads": threads, "op": site.op,
                       "cfg": site.config.as_dict(), "shape": list(site.shape), "channels_last": site.channels_last,
                       "mode": mode, "input_grad": site.input_grad if mode == "train" else False,
                       "candidates": sorted(cands)}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:20]


def _effect(c: dict) -> Effect:
    return Effect(float(c["ratio"]), (float(c["ci"][0]), float(c["ci"][1])), int(c.get("rounds", 2)),
                  float(c.get("level", 0.95)))


def decide(entry: dict[str, Any], min_gain: float) -> tuple[str, dict[str, str]]:
    """``(choice, {algorithm: verdict})`` from a measured entry: the lowest-ratio candidate whose
    verdict against ``default`` is ``faster`` at the stored (Bonferroni-adjusted) level, else ``default``."""
    ranked, verdicts = _ranked(entry, min_gain)
    return (ranked[0] if ranked else "default"), verdicts


def _ranked(entry: dict[str, Any], min_gain: float, allowed: set[str] | None = None) -> tuple[list[str], dict]:
    """Candidates with a ``faster`` verdict, best first, and every candidate's verdict."""
    floor = float(entry.get("noise_floor", 0.0))
    verdicts: dict[str, str] = {}
    wins = []
    for algo, c in entry["candidates"].items():
        if algo == "default" or c.get("ratio") is None or (allowed is not None and algo not in allowed):
            continue
        eff = _effect(c)
        v = verdict(eff, floor=floor, min_effect=min_gain)
        verdicts[algo] = v
        if v == "faster":
            wins.append((eff.ratio, algo))
    return [a for _, a in sorted(wins)], verdicts


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
            and isinstance(entry.get("candidates"), dict) and "default" in entry["candidates"]
            and all(isinstance(c, dict) and "median_ms" in c for c in entry["candidates"].values()))


def _params(mod: nn.Module) -> list[torch.Tensor]:
    return [p for p in mod.parameters() if p.requires_grad]


def train_step(mod: nn.Module, x: torch.Tensor, grad_out: torch.Tensor | None = None,
               lr: float = TRAIN_LR) -> torch.Tensor:
    """One training step of ``mod`` on ``x``: clear gradients, forward, backward (``grad_out``, or
    the mean-square loss when ``None``), SGD update ``p -= lr·∇p`` in place. The update bumps each
    parameter's version counter, so cached weight transforms are recomputed on the next forward —
    exactly what a real optimizer step causes. Returns the forward output (detached)."""
    params = _params(mod)
    for p in params:
        p.grad = None
    if x.requires_grad:
        x.grad = None
    y = mod(x)
    if grad_out is None:
        y.float().square().mean().backward()
    else:
        y.backward(grad_out)
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p.add_(p.grad, alpha=-lr)
    return y.detach()


def _layer_input(site: LayerSite, device: str, gen: torch.Generator) -> torch.Tensor:
    x = torch.randn(site.shape, generator=gen).to(device)
    if site.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _candidate_fns(site: LayerSite, fam: OpFamily, names: list[str], mode: str, device: str,
                   gen: torch.Generator) -> dict[str, Any]:
    """Zero-argument callables timing each candidate as deployed (see the module docstring).

    In training mode every candidate wraps one private copy of the layer's parameters (the model's
    are never updated): a step of any candidate updates them, which invalidates every candidate's
    cached transforms exactly as a real optimizer step would, and one copy keeps memory at one
    extra layer (VGG16's first linear layer alone is 411 MB)."""
    xin = _layer_input(site, device, gen)
    train = mode == "train"
    if train and site.input_grad:
        xin.requires_grad_(True)
    base = site.module
    if hasattr(base, "requested"):  # a model swapped earlier: time the framework op itself as default
        base = fam.wrap(base, "default", layer_name=site.name, copy_weights=train)
    elif train:
        base = copy.deepcopy(base)
    if train:
        base.train()
    fns = {}
    grad_out = None
    for c in names:
        mod = base if c == "default" else fam.wrap(base, c, layer_name=site.name, copy_weights=False)
        if train:
            mod.train()
            if grad_out is None:
                with torch.no_grad():
                    y = mod(xin)
                grad_out = torch.randn(y.shape, generator=gen).to(device)
            fns[c] = (lambda mod=mod: train_step(mod, xin, grad_out))
        else:
            fns[c] = (lambda mod=mod: mod(xin))
    return fns


def _measure_layer(fns: dict[str, Any], *, rounds: int, warmup: int, device: str, prune_factor: float | None,
                   alpha: float, threads: int, mode: str) -> dict[str, Any]:
    """Time ``fns`` (``default`` first) with the measurement core; the cache entry for one layer."""
    variants = {c: torch_variant(f, threads=threads, device=device) for c, f in fns.items()}
    pruned: dict[str, float] = {}
    with torch.set_grad_enabled(mode == "train"):
        if prune_factor and len(variants) > 1:
            pilot = measure(variants, baseline="default", aa=False, warmup=1, rounds=1, inner=1)
            ref = pilot.median_ms("default")  # the deciding clock (thread CPU time at 1 thread): wall swings with load
            for c in list(variants):
                t = pilot.median_ms(c)
                if c != "default" and t > prune_factor * ref:
                    pruned[c] = t
                    del variants[c]
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


def _candidates(candidates: Any, ops: Sequence[str], device: str, mode: str) -> dict[str, list[str]]:
    """Canonical candidate names per family (``default`` first), available on ``device``,
    differentiable in training mode."""
    if candidates is None or isinstance(candidates, Mapping):
        given = dict(candidates or {})
    else:  # a list: convolution candidates (the original API)
        given = {"conv2d": list(candidates)}
    out = {}
    for op in ops:
        fam = family(op)
        names = [fam.get(c).name for c in given.get(op, fam.names(device))]
        keep = []
        for n in dict.fromkeys(["default"] + names):
            a = fam.get(n)
            if a.available(device) is not None:
                log.info("%s: %s not available on %s (%s); skipped", op, n, device, a.available(device))
                continue
            if mode == "train" and not a.differentiable:
                continue
            keep.append(n)
        out[op] = keep
    return out


def _param_bytes(model: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def _tune_layout(model: nn.Module, x: torch.Tensor, layout: str, ctx: dict) -> tuple[list[dict], dict[str, Any]]:
    """Per-layer tuning of ``model`` run in ``layout``; returns report rows and new cache entries."""
    in_layout = swap(model, layout=layout)
    sites = record_layers(in_layout, x, ctx["ops"], mode=ctx["mode"])
    rows, new_entries = [], {}
    gen = torch.Generator(device="cpu").manual_seed(0)
    from tqdm.auto import tqdm

    for site in tqdm(sites, desc=f"autotune layers ({layout})", disable=None, leave=False):
        fam = FAMILIES[site.op]
        cands = ctx["cands"][site.op]
        itemsize = x.element_size()
        applicable, why_not, mem = [], {}, {}
        for c in cands:
            a = fam.get(c)
            reason = a.supports(site.config)
            mu = a.memory(site.config, site.shape, itemsize)
            mem[c] = mu
            if reason is None and c != "default" and mu.cached + mu.workspace > ctx["budget"]:
                reason = (f"memory: needs {(mu.cached + mu.workspace) / 2**20:.0f} MiB (cached "
                          f"{mu.cached / 2**20:.0f} + workspace {mu.workspace / 2**20:.0f}) > budget "
                          f"{ctx['budget'] / 2**20:.0f} MiB")
            if reason is None:
                applicable.append(c)
            else:
                why_not[c] = reason
        key = _key(ctx["label"], ctx["device"], site, applicable, ctx["mode"], ctx["threads"])
        if key not in ctx["measured"]:
            hit = ctx["cache"].get(key) if ctx["use_cache"] and not ctx["refresh"] else None
            if hit is not None and not _valid_entry(hit):
                log.warning("autotune cache entry %s is stale or corrupt; re-measuring", key)
                hit = None
            attempts, rounds = 1, ctx["repeats"]
            if hit is not None and _doubtful(hit, ctx["min_gain"]) and hit.get("attempts", 1) < MAX_ATTEMPTS:
                log.info("autotune cache entry %s is doubtful; re-measuring with %d rounds", key, 2 * ctx["repeats"])
                attempts, rounds = hit.get("attempts", 1) + 1, 2 * ctx["repeats"]
                hit = None
            if hit is not None:
                ctx["measured"][key] = {**hit, "cached": True}
            else:
                if len(applicable) == 1:  # nothing to compare: default only
                    entry = {"version": CACHE_VERSION, "noise_floor": 0.0, "conditions": {}, "warnings": [],
                             "candidates": {"default": {"median_ms": None, "ratio": 1.0, "ci": [1.0, 1.0]}}}
                else:
                    fns = _candidate_fns(site, fam, applicable, ctx["mode"], ctx["device"], gen)
                    entry = _measure_layer(fns, rounds=rounds, warmup=ctx["warmup"], device=ctx["device"],
                                           prune_factor=ctx["prune_factor"], alpha=ctx["alpha"],
                                           threads=ctx["threads"], mode=ctx["mode"])
                entry["attempts"] = attempts
                ctx["measured"][key] = {**entry, "cached": False}
                new_entries[key] = entry
                if ctx["use_cache"] and ctx.get("cache_path") is not None:
                    _save_cache({key: entry}, ctx["cache_path"])  # each finished layer: an interrupted tune keeps its work
        m = ctx["measured"][key]
        ranked, verdicts = _ranked(m, ctx["min_gain"])
        cm = m["candidates"]
        rows.append({
            "layer": site.name, "op": site.op, "config": site.config.short(), "input_shape": list(site.shape),
            "layout": layout, "channels_last": site.channels_last, "input_grad": site.input_grad,
            "ranked": ranked, "choice": ranked[0] if ranked else "default",
            "noise_floor": m.get("noise_floor", 0.0), "cached": m["cached"],
            "busy": bool(m.get("conditions", {}).get("busy")),
            "times_ms": {c: v["median_ms"] for c, v in cm.items()},
            "comparisons": {c: {"ratio": v["ratio"], "ci": v["ci"], "verdict": verdicts.get(c)}
                            for c, v in cm.items() if c != "default"},
            "cached_bytes_by_algo": {c: mem[c].cached for c in mem},
            "unsupported": why_not,
        })
    _fit_budget(rows, ctx["budget"])
    for r in rows:
        c = r["choice"]
        comp = r["comparisons"].get(c) if c != "default" else None
        ratio = float(comp["ratio"]) if comp else 1.0
        ci = comp["ci"] if comp else [1.0, 1.0]
        r.update({"default_ms": r["times_ms"].get("default"), "best_ms": r["times_ms"].get(c),
                  "speedup": 1.0 / ratio, "speedup_lo": 1.0 / ci[1], "speedup_hi": 1.0 / ci[0],
                  "verdict": "faster" if c != "default" else "same",
                  "cached_bytes": int(r["cached_bytes_by_algo"].get(c, 0)) if c != "default" else 0})
    return rows, new_entries


def _fit_budget(rows: list[dict], budget: int) -> None:
    """Move layers to cheaper significant candidates (or ``default``) until the chosen algorithms'
    cached bytes fit ``budget``; each move is the one losing the least time per byte it frees."""
    def cached(r, algo=None):
        algo = r["choice"] if algo is None else algo
        return r["cached_bytes_by_algo"].get(algo, 0) if algo != "default" else 0

    def t(r, algo):
        return r["times_ms"].get(algo) or 0.0

    total = sum(cached(r) for r in rows)
    while total > budget:
        moves = []
        for r in rows:
            now = cached(r)
            if now <= 0:
                continue
            nxt = next((a for a in r["ranked"] if cached(r, a) < now), "default")
            moves.append(((t(r, nxt) - t(r, r["choice"])) / (now - cached(r, nxt)), r, nxt))
        if not moves:
            break
        _, r, nxt = min(moves, key=lambda m: m[0])
        old, now = r["choice"], cached(r)
        r["choice"] = nxt
        r.setdefault("budget_moves", []).append(old)
        log.info("memory budget: layer %s %s → %s", r["layer"], old, nxt)
        total += cached(r) - now


def _e2e_decide(model: nn.Module, x: torch.Tensor, tuned: dict[str, dict[str, str]], layouts: list[str],
                ctx: dict) -> tuple[str, dict[str, Any]]:
    """Time the untouched model and each layout's tuned model end to end (forward, or a training
    step on a copy of the weights); return the variant to keep and the comparisons."""
    mode, thr, device = ctx["mode"], ctx["threads"], ctx["device"]
    if mode == "train":
        base = copy.deepcopy(model).train()
        opt = torch.optim.SGD([p for p in base.parameters() if p.requires_grad], lr=TRAIN_LR)

        def step(m):
            opt.zero_grad(set_to_none=True)
            m(x).float().square().mean().backward()
            opt.step()
        models = {"default": base, **{f"tuned:{L}": swap(base, layers=tuned[L], layout=L) for L in layouts}}
        fns = {k: (lambda m=m: step(m)) for k, m in models.items()}
    else:
        models = {"default": model, **{f"tuned:{L}": swap(model, layers=tuned[L], layout=L) for L in layouts}}
        fns = {k: (lambda m=m: m(x)) for k, m in models.items()}
    with torch.set_grad_enabled(mode == "train"):
        meas = measure({k: torch_variant(f, threads=thr, device=device) for k, f in fns.items()},
                       baseline="default", warmup=1, rounds=ctx["e2e_rounds"])
    incumbent = f"tuned:{layouts[0]}"
    chosen = incumbent
    others = [f"tuned:{L}" for L in layouts[1:]]
    best_ratio = 1.0
    for o in others:
        c = meas.compare(o, incumbent, min_effect=ctx["min_gain"], alpha=ctx["alpha"] / max(1, len(others)))
        if c.verdict == "faster" and c.ratio < best_ratio:
            chosen, best_ratio = o, c.ratio
    if meas.compare(chosen, "default", alpha=ctx["alpha"]).verdict == "slower":
        log.warning("autotune: the tuned model (%s) is significantly slower end to end than the untouched model; "
                    "keeping the untouched model", chosen)
        chosen = "default"
    summary = {"chosen": chosen, "noise_floor": meas.noise_floor(), "conditions": meas.conditions(),
               "warnings": list(meas.warnings), "variants": {}}
    for k in fns:
        c = meas.compare(k, "default") if k != "default" else None
        summary["variants"][k] = {"median_ms": meas.median_ms(k), "iqr_ms": meas.iqr_ms(k),
                                  "ratio": c.ratio if c else 1.0, "ci": list(c.ci) if c else [1.0, 1.0],
                                  "speedup": c.speedup if c else 1.0,
                                  "speedup_ci": list(c.speedup_ci) if c else [1.0, 1.0],
                                  "verdict": c.verdict if c else "baseline"}
    return chosen, summary


def autotune(
    model: nn.Module,
    example_input: torch.Tensor,
    device: str = "cpu",
    *,
    ops: Sequence[str] = OPS,
    candidates: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    mode: str = "inference",
    layouts: Sequence[str] = ("nchw",),
    memory_budget: int | None = None,
    guard: bool = True,
    repeats: int = 10,
    warmup: int = 2,
    e2e_rounds: int = 8,
    use_cache: bool = True,
    refresh: bool = False,
    cache_path: Path | None = None,
    prune_factor: float | None = 20.0,
    min_gain: float = 0.05,
    alpha: float = 0.05,
) -> TuneResult:
    """Pick, per layer of ``model`` on ``device``, the algorithm that is significantly fastest for
    ``mode``, and the model-wide layout (see the module docstring for the procedure).

    Args:
        model (nn.Module): the model (not modified; on another device it is copied there).
        example_input (Tensor): a representative input (its shape decides each layer's shape).
        device (str, optional): ``'cpu'`` or ``'cuda[:i]'``. (default: :obj:`'cpu'`)
        ops (sequence of str, optional): families to tune, from ``conv2d``, ``linear``, ``pool``.
        candidates (list or dict, optional): a list of convolution algorithms, or ``{family: [names]}``
            (default: every algorithm of the family available on ``device``; ``default`` is always added).
        mode (str, optional): ``'inference'`` (forward, no grad) or ``'train'`` (forward + backward +
            SGD update per timed step). (default: :obj:`'inference'`)
        layouts (sequence of str, optional): model-wide layouts to try (``nchw``, ``channels_last``);
            the first is the incumbent. (default: ``("nchw",)``)
        memory_budget (int, optional): bytes the tuned model may keep for cached transforms, and the
            most one layer's cached + workspace bytes may be (default: :data:`BUDGET_FACTOR` × the
            model's parameter bytes, at least 64 MiB).
        guard (bool, optional): time the tuned model against the untouched one end to end and keep
            the untouched one if the tuned one is significantly slower. (default: :obj:`True`)
        repeats, warmup (int, optional): interleaved timed rounds (>= 2) and warm-up calls per layer.
        e2e_rounds (int, optional): end-to-end rounds for the layout decision and the guard (>= 2).
        use_cache / refresh (bool, optional): read/write the on-disk cache / re-measure hits.
        prune_factor (float, optional): drop a candidate whose pilot call is this many times slower
            than ``default``. (default: 20)
        min_gain (float, optional): smallest relative gain that counts; a candidate must be faster by
            more than this *and* than the A/A noise floor, with an interval below 1. (default: 0.05)
        alpha (float, optional): family-wise error rate per layer (Bonferroni over candidates).

    Raises:
        DeviceUnavailable: ``device`` is CUDA but no GPU is visible.
        UnknownName: an unknown family, candidate, mode or layout.
        XflowError: bad numeric arguments, or no tunable layer reached by ``example_input``.
    """
    import pandas as pd

    if repeats < 2 or e2e_rounds < 2:
        raise XflowError(f"autotune: repeats and e2e_rounds must be >= 2 (an interval needs two rounds), "
                         f"got {repeats}, {e2e_rounds}")
    if not (math.isfinite(min_gain) and min_gain >= 0) or not (0 < alpha < 1):
        raise XflowError(f"autotune: min_gain must be >= 0 and alpha in (0, 1), got {min_gain}, {alpha}")
    if mode not in MODES:
        raise UnknownName(f"autotune: unknown mode {mode!r}; choose from {', '.join(MODES)}")
    layouts = list(dict.fromkeys(layouts))
    for L in layouts:
        if L not in LAYOUTS:
            raise UnknownName(f"autotune: unknown layout {L!r}; choose from {', '.join(LAYOUTS)}")
    if not layouts:
        raise XflowError("autotune: give at least one layout")
    if memory_budget is not None and not memory_budget >= 0:
        raise XflowError(f"autotune: memory_budget must be >= 0 bytes, got {memory_budget}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailable(f"device {device!r} requested but torch sees no CUDA GPU; use device='cpu'")
    ops = [family(op).name for op in ops]
    cands = _candidates(candidates, ops, device, mode)
    label = describe_device(device).label()
    params = list(model.parameters())
    want = torch.device(device)
    if params and (params[0].device.type != want.type
                   or (want.index is not None and params[0].device.index != want.index)):
        model = copy.deepcopy(model).to(device)
    budget = int(memory_budget) if memory_budget is not None else max(64 << 20, int(BUDGET_FACTOR * _param_bytes(model)))
    x = example_input.to(device)
    cache_path = Path(cache_path) if cache_path else default_cache_path()
    ctx = {"ops": ops, "mode": mode, "cands": cands, "budget": budget, "label": label, "device": device,
           "threads": torch.get_num_threads(), "cache": load_cache(cache_path) if use_cache else {},
           "use_cache": use_cache, "refresh": refresh, "cache_path": cache_path, "measured": {}, "repeats": repeats, "warmup": warmup,
           "prune_factor": prune_factor, "alpha": alpha, "min_gain": min_gain, "e2e_rounds": e2e_rounds}
    layout_rows: dict[str, list[dict]] = {}
    new_entries: dict[str, Any] = {}
    for L in layouts:
        rows, entries = _tune_layout(model, x, L, ctx)
        layout_rows[L] = rows
        new_entries.update(entries)
    if not any(layout_rows.values()):
        raise XflowError(f"the model has no {'/'.join(ops)} layer reached by example_input; nothing to tune")
    if use_cache and new_entries:
        _save_cache(new_entries, cache_path)
    tuned = {L: {r["layer"]: r["choice"] for r in rows} for L, rows in layout_rows.items()}
    e2e: dict[str, Any] = {}
    chosen = f"tuned:{layouts[0]}"
    if guard or len(layouts) > 1:
        chosen, e2e = _e2e_decide(model, x, tuned, layouts, ctx)
    if chosen == "default":
        layout = "nchw"
        choices = {r["layer"]: "default" for r in layout_rows[layouts[0]]}
        rows = [{**r, "choice": "default", "speedup": 1.0, "speedup_lo": 1.0, "speedup_hi": 1.0,
                 "verdict": "reverted", "cached_bytes": 0, "best_ms": r["default_ms"]} for r in layout_rows[layouts[0]]]
    else:
        layout = chosen.split(":", 1)[1]
        choices = tuned[layout]
        rows = layout_rows[layout]
    tuned_model = swap(model, layers={k: v for k, v in choices.items() if v != "default"}, layout=layout)
    all_algos = list(dict.fromkeys(a for op in ops for a in cands[op]))
    frame_rows = []
    for r in rows:
        fr = {k: v for k, v in r.items() if k not in ("times_ms", "comparisons", "unsupported", "ranked",
                                                      "cached_bytes_by_algo", "budget_moves")}
        fr["input_shape"] = "×".join(map(str, r["input_shape"]))
        for c in all_algos:
            fr[f"{c}_ms"] = r["times_ms"].get(c, float("nan"))
        fr["why_not"] = "; ".join(f"{c}: {why}" for c, why in r["unsupported"].items())
        fr["budget_moves"] = ",".join(r.get("budget_moves", []))
        frame_rows.append(fr)
    report = pd.DataFrame(frame_rows)
    return TuneResult(model=tuned_model, choices=choices, report=report, device=device, device_label=label,
                      rows=rows, layout=layout, mode=mode, e2e=e2e, memory_budget=budget, layout_rows=layout_rows)
