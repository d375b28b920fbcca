"""Throughput experiment: one model, every implementation, training and inference, interleaved.

:func:`run` is the experiment function (``run(config) -> records``) used by the benchmark script,
the notebook (through :func:`xflow.sweep.run_sweep`, cached), the CLI and the tests.

Implementations (``impls``):

* ``eager``  — per-example eager PyTorch (:meth:`DynamicModel.loss_eager`);
* ``none`` / ``depth`` / ``agenda`` — the per-example code recorded in an autobatch graph and run
  with that strategy;
* ``hand``   — hand-batched PyTorch (:meth:`DynamicModel.loss_handbatched`).

One *step* = one minibatch: ``train`` is forward + backward + SGD update, ``infer`` is the forward
pass under ``torch.no_grad()``. The cyclic garbage collector is paused during a step (and run
before it) so that a collection is not charged to whichever implementation happens to trigger
it; torch runs on ``threads`` intra-op threads (default 1: on a shared 2-core machine, 2 threads
make small kernels up to 100x slower through spinning/descheduled workers). Each repeat runs every (impl, mode) once, in a rotated order so no
implementation always runs first; after ``warmup`` unmeasured rounds, the median and IQR of
``repeats`` rounds are reported. Times are split into phases:

* ``construct_s`` — running the user's per-example code (for autobatch: recording the graph);
* ``schedule_s``  — the strategy's planning (autobatch only);
* ``execute_s``   — batched forward execution: gathers + kernels (autobatch only; for eager and
  hand-batched the forward pass is all in ``construct_s``);
* ``backward_s``, ``update_s``.

Records are long format: one row per (model, impl, mode, metric) with ``value`` (median) and
``q25``/``q75``; ratio rows (``speedup_vs_eager``, ``ratio_to_hand``) come from the same run.
"""
from __future__ import annotations

import gc
import logging
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch

from xflow.errors import DeviceUnavailable, UnknownName

from .graph import Graph
from .models import DynamicModel, get_model

__all__ = ["PRESETS", "IMPLS", "BENCH_VERSION", "run", "measure_step", "default_config"]

log = logging.getLogger(__name__)

IMPLS = ("eager", "none", "depth", "agenda", "hand")

#: Bumped whenever a change alters what is measured, so cached sweep results (keyed by config) expire.
BENCH_VERSION = 2

#: Model dimensions. ``full`` follows DyNet's benchmark sizes; ``quick`` keeps tests/notebooks fast.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "bilstm": dict(vocab=20000, n_tags=50, emb=128, hidden=256, mlp=64),
        "bilstm-char": dict(vocab=20000, n_tags=50, emb=128, hidden=256, mlp=64, n_chars=100, char_emb=20,
                            char_hidden=64),
        "treelstm": dict(vocab=20000, n_labels=5, emb=128, hidden=128),
    },
    "quick": {
        "bilstm": dict(vocab=5000, n_tags=20, emb=64, hidden=64, mlp=32, max_len=40),
        "bilstm-char": dict(vocab=5000, n_tags=20, emb=64, hidden=64, mlp=32, n_chars=60, char_emb=16,
                            char_hidden=32, max_len=40),
        "treelstm": dict(vocab=5000, n_labels=5, emb=64, hidden=64, max_len=40),
    },
    "tiny": {
        "bilstm": dict(vocab=300, n_tags=8, emb=16, hidden=16, mlp=8, max_len=12, mean_len=8.0),
        "bilstm-char": dict(vocab=300, n_tags=8, emb=16, hidden=16, mlp=8, n_chars=20, char_emb=8,
                            char_hidden=8, max_len=12, mean_len=8.0),
        "treelstm": dict(vocab=300, n_labels=5, emb=16, hidden=16, max_len=12, mean_len=8.0),
    },
}


def default_config(model: str = "bilstm", quick: bool = True, **over: Any) -> dict:
    """A complete config for :func:`run` (quick: small dimensions, few repeats)."""
    cfg = dict(model=model, preset="quick" if quick else "full", batch=32 if quick else 64,
               impls=list(IMPLS), modes=["train", "infer"], warmup=1, repeats=3 if quick else 5,
               threads=1, seed=0, lr=1e-3, bench_version=BENCH_VERSION)
    cfg.update(over)
    return cfg


def _autobatch_loss(model: DynamicModel, batch: Sequence[Any], strategy: str,
                    phases: dict[str, float]) -> torch.Tensor:
    t0 = time.perf_counter()
    g = Graph(strategy=strategy)
    with g:
        losses = model.loss_autobatch(batch)
    t1 = time.perf_counter()
    total = g.forward_batch(losses).sum()
    phases["construct_s"] = t1 - t0
    phases["schedule_s"] = g.stats["schedule_s"]
    phases["execute_s"] = time.perf_counter() - t1 - g.stats["schedule_s"]
    phases["n_nodes"] = float(len(g))
    phases["n_groups"] = float(g.stats["n_groups"])
    return total


def measure_step(model: DynamicModel, batch: Sequence[Any], impl: str, mode: str,
                 opt: torch.optim.Optimizer | None = None) -> dict[str, float]:
    """Run one minibatch step of ``impl`` in ``mode`` (``train``/``infer``); return phase times."""
    phases: dict[str, float] = {}
    gc.collect()
    gc.disable()  # a cyclic-GC pause inside one step would be charged to whichever impl ran then
    try:
        _step(model, batch, impl, mode, opt, phases)
    finally:
        gc.enable()
    return phases


def _step(model: DynamicModel, batch: Sequence[Any], impl: str, mode: str, opt: torch.optim.Optimizer | None,
          phases: dict[str, float]) -> None:
    t0 = time.perf_counter()
    ctx = torch.enable_grad() if mode == "train" else torch.no_grad()
    with ctx:
        if impl == "eager":
            loss = model.loss_eager(batch)
            phases["construct_s"] = time.perf_counter() - t0
        elif impl == "hand":
            loss = model.loss_handbatched(batch)
            phases["construct_s"] = time.perf_counter() - t0
        else:
            loss = _autobatch_loss(model, batch, impl, phases)
        t1 = time.perf_counter()
        if mode == "train":
            loss.backward()
            t2 = time.perf_counter()
            if opt is not None:
                opt.step()
                opt.zero_grad(set_to_none=True)
            t3 = time.perf_counter()
            phases["backward_s"] = t2 - t1
            phases["update_s"] = t3 - t2
    phases["total_s"] = time.perf_counter() - t0
    phases["loss"] = float(loss.detach())


def _q(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if len(xs) == 1:
        return xs[0]
    k = (len(xs) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def run(config: dict) -> list[dict]:
    """Measure every implementation of one model (see module docstring); returns long records."""
    cfg = default_config(config.get("model", "bilstm"), quick=config.get("preset", "quick") != "full")
    cfg.update(config)
    bad = [i for i in cfg["impls"] if i not in IMPLS]
    if bad:
        raise UnknownName(f"unknown implementation(s) {bad}; choose from {list(IMPLS)}")
    torch.set_num_threads(int(cfg["threads"]))
    torch.manual_seed(int(cfg["seed"]))
    dims = dict(PRESETS[cfg["preset"]][cfg["model"]])
    dims.update(cfg.get("dims") or {})
    if cfg.get("device", "cpu") != "cpu":
        raise DeviceUnavailable(f"the autobatch benchmark runs on CPU only (asked for {cfg['device']!r})")
    model = get_model(cfg["model"], **dims)
    n_batches = int(cfg.get("n_batches", 2))
    data = model.make_data(int(cfg["batch"]) * n_batches, seed=int(cfg["seed"]) + 1)
    batches = [data[i * cfg["batch"]:(i + 1) * cfg["batch"]] for i in range(n_batches)]
    opt = torch.optim.SGD(model.parameters(), lr=float(cfg["lr"]))
    pairs = [(impl, mode) for impl in cfg["impls"] for mode in cfg["modes"]]
    samples: dict[tuple[str, str], list[dict[str, float]]] = {p: [] for p in pairs}
    rounds = int(cfg["warmup"]) + int(cfg["repeats"])
    for r in range(rounds):
        batch = batches[r % n_batches]
        shift = r % len(pairs)
        for impl, mode in pairs[shift:] + pairs[:shift]:
            ph = measure_step(model, batch, impl, mode, opt)
            if r >= int(cfg["warmup"]):
                samples[(impl, mode)].append(ph)
    n_examples = int(cfg["batch"])
    base = {"model": cfg["model"], "preset": cfg["preset"], "batch": n_examples, "threads": int(cfg["threads"]),
            "unit": model.unit, "n_tokens": sum(model.n_tokens(b) for b in batches) / n_batches}
    records: list[dict] = []
    tput: dict[tuple[str, str], float] = {}
    for (impl, mode), phs in samples.items():
        keys = sorted({k for ph in phs for k in ph})
        for k in keys:
            vals = [ph[k] for ph in phs if k in ph]
            records.append({**base, "impl": impl, "mode": mode, "metric": k, "value": statistics.median(vals),
                            "q25": _q(vals, 0.25), "q75": _q(vals, 0.75), "n": len(vals)})
        t = [n_examples / ph["total_s"] for ph in phs]
        tput[(impl, mode)] = statistics.median(t)
        records.append({**base, "impl": impl, "mode": mode, "metric": "throughput", "value": tput[(impl, mode)],
                        "q25": _q(t, 0.25), "q75": _q(t, 0.75), "n": len(t)})
        if impl in ("none", "depth", "agenda"):
            tot = statistics.median(ph["total_s"] for ph in phs)
            for k in ("construct_s", "schedule_s"):
                records.append({**base, "impl": impl, "mode": mode, "metric": k.replace("_s", "_frac"),
                                "value": statistics.median(ph[k] for ph in phs) / tot, "n": len(phs)})
    for (impl, mode), v in tput.items():
        if ("eager", mode) in tput:
            records.append({**base, "impl": impl, "mode": mode, "metric": "speedup_vs_eager",
                            "value": v / tput[("eager", mode)]})
        if ("hand", mode) in tput:
            records.append({**base, "impl": impl, "mode": mode, "metric": "ratio_to_hand",
                            "value": tput[("hand", mode)] / v})
    return records
