"""Throughput experiment: one model, every implementation, training and inference, through the measurement core.

:func:`run` is the experiment function (``run(config) -> records``) used by the benchmark script,
the notebooks (through :func:`xflow.sweep.run_sweep`, cached), the CLI and the tests. Every
timing goes through :func:`xflow.runtime.measure.measure`: warm-up, interleaved rounds in a
shuffled order, wall/thread/process clocks (thread CPU time decides: every implementation runs
on the calling thread, torch on 1 intra-op thread, DyNet single-threaded), an A/A control of the
baseline, paired bootstrap intervals and verdicts for every ratio.

Implementations (``impls``):

* ``eager``  — per-example eager PyTorch (:meth:`DynamicModel.loss_eager`);
* ``none`` / ``depth`` / ``agenda`` / ``agenda-level`` / ``auto`` — the per-example code recorded
  in an autobatch graph and run with that strategy; a ``-unfused`` suffix records the recurrent
  cells as elementwise ops (the graph DyNet's builders make) instead of one fused gate op;
* ``hand``   — hand-batched PyTorch (:meth:`DynamicModel.loss_handbatched`);
* ``dynet{flag}`` / ``dynet{flag}-unfused`` — DyNet itself with xflow's weights and graph
  (:mod:`xflow.autobatch.dynet_peer`), added when ``config["dynet"]`` is DyNet's autobatch flag
  of this process (set by :func:`xflow.autobatch.dynet_peer.run_dynet`).

One *step* = one minibatch: ``train`` is forward + backward + SGD update, ``infer`` the forward pass
(no gradient). The ``k``-th call of every implementation uses minibatch ``k mod n_batches``, so
one round measures every implementation on the same minibatch. ``gc.collect()`` runs (untimed)
before each sample, so each step pays for its own garbage only. With ``phases``, ``agenda:record``
(recording only) and, in training, ``agenda:forward`` (recording + batched forward) are measured in
the same rounds: the shares of a step follow from them.

Records (long format): per variant the measurement core's ``time_ms`` rows (median of the deciding
clock, IQR, wall and CPU medians, contention, ratio to the baseline with interval and verdict, A/A
noise floor, load) plus ``throughput``; ``speedup`` rows for the pairs the docs quote
(:data:`PAIRS`: ``value`` = how many times faster ``a`` is than ``b``, ``lo``/``hi`` its 95 %
interval, ``verdict``); ``graph`` rows (nodes, batches, gathers) of one instrumented step per
autobatch implementation; ``loss`` rows of the first step (equal for every implementation).
"""
from __future__ import annotations

import gc
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

import torch

from xflow.errors import DeviceUnavailable, UnknownName

from xflow.runtime.measure import Variant, measure
from .dynet_peer import PEER_VARIANTS, build, dynet_available, init_dynet, run_dynet
from .graph import Graph
from .memory import retain_heap
from .models import DynamicModel, get_model
from .presets import PRESETS

__all__ = ["PRESETS", "IMPLS", "STRATEGY_IMPLS", "BENCH_VERSION", "PAIRS", "run", "run_experiment", "default_config",
           "parse_impl", "step_fn"]

log = logging.getLogger(__name__)

STRATEGY_IMPLS = ("none", "depth", "agenda", "agenda-level", "auto")
IMPLS = ("eager", *STRATEGY_IMPLS, "hand")
DEFAULT_IMPLS = ("eager", "none", "depth", "agenda", "agenda-unfused", "hand")

#: Bumped whenever a change alters what is measured, so cached sweep results (keyed by config) expire.
BENCH_VERSION = 5

#: (a, b) pairs reported as speed-ups of ``a`` over ``b`` when both were measured.
PAIRS: tuple[tuple[str, str], ...] = (
    ("agenda", "eager"), ("agenda", "hand"), ("agenda", "none"), ("agenda", "depth"), ("agenda", "agenda-unfused"),
    ("agenda-level", "agenda"), ("auto", "agenda"), ("depth", "eager"), ("hand", "eager"), ("none", "eager"),
    ("agenda-unfused", "eager"), ("agenda-unfused", "hand"),
    ("agenda", "dynet1"), ("agenda", "dynet1-unfused"), ("agenda-unfused", "dynet1-unfused"),
    ("agenda", "dynet0"), ("agenda-unfused", "dynet0-unfused"), ("dynet1", "dynet1-unfused"),
    ("dynet1", "eager"), ("dynet0", "eager"), ("hand", "dynet1"), ("hand", "dynet1-unfused"),
)


def default_config(model: str = "bilstm", quick: bool = True, **over: Any) -> dict:
    """A complete config for :func:`run` (quick: small dimensions, few rounds)."""
    batch = 32 if quick else 64
    if quick and model == "bilstm-char":
        batch = 16
    cfg = dict(model=model, preset="quick" if quick else "full", batch=batch, impls=list(DEFAULT_IMPLS),
               modes=["train", "infer"], warmup=1, rounds=5 if quick else 10, max_seconds=None, threads=1,
               seed=0, lr=1e-3, n_batches=2, phases=True, dynet=None, retain_heap=True,
               bench_version=BENCH_VERSION)
    cfg.update(over)
    return cfg


def parse_impl(impl: str) -> tuple[str, str | None, bool]:
    """``(kind, strategy, fused)``: kind ``eager``/``hand``/``autobatch``/``dynet``."""
    fused = not impl.endswith("-unfused")
    base = impl if fused else impl[:-len("-unfused")]
    if base in ("eager", "hand"):
        if not fused:
            raise UnknownName(f"implementation {impl!r}: only autobatch strategies and DyNet have an unfused variant")
        return base, None, True
    if base in STRATEGY_IMPLS:
        return "autobatch", base, fused
    if base.startswith("dynet") and base[5:].isdigit():
        return "dynet", None, fused
    raise UnknownName(f"unknown implementation {impl!r}; choose from {list(IMPLS)} (strategies may end in -unfused)")


def _autobatch_loss(model: DynamicModel, batch: Sequence[Any], strategy: str, fused: bool) -> tuple[torch.Tensor, Graph]:
    g = Graph(strategy=strategy)
    with g:
        losses = model.loss_autobatch(batch, fused)
    return g.forward_batch(losses).sum(), g


def step_fn(model: DynamicModel, batches: Sequence[Sequence[Any]], impl: str, mode: str,
            opt: torch.optim.Optimizer | None, peer: Any = None, trainer: Any = None) -> Callable[[], Any]:
    """A zero-argument callable running one minibatch step of ``impl`` (next minibatch each call)."""
    kind, strategy, fused = parse_impl(impl.split(":")[0])
    phase = impl.split(":")[1] if ":" in impl else None
    train = mode == "train"
    state = {"i": 0}

    def next_batch() -> Sequence[Any]:
        b = batches[state["i"] % len(batches)]
        state["i"] += 1
        return b

    if kind == "dynet":
        def dynet_step() -> float:
            loss = peer.loss(next_batch())
            v = loss.value()
            if train:
                loss.backward()
                trainer.update()
            return v
        return dynet_step

    def step() -> float:
        batch = next_batch()
        with torch.enable_grad() if train else torch.no_grad():
            if kind == "eager":
                loss = model.loss_eager(batch)
            elif kind == "hand":
                loss = model.loss_handbatched(batch)
            elif phase == "record":
                with Graph(strategy=strategy):
                    model.loss_autobatch(batch, fused)
                return 0.0
            else:
                loss, _ = _autobatch_loss(model, batch, strategy, fused)
                if phase == "forward":
                    return float(loss.detach())
            if train:
                loss.backward()
                if opt is not None:
                    opt.step()
                    opt.zero_grad(set_to_none=True)
        return float(loss.detach())
    return step


def _graph_stats(model: DynamicModel, batch: Sequence[Any], impl: str, mode: str) -> dict[str, float]:
    _, strategy, fused = parse_impl(impl)
    with torch.enable_grad() if mode == "train" else torch.no_grad():
        _, g = _autobatch_loss(model, batch, strategy, fused)
    gathers: dict[str, int] = {}
    rows = 0
    for seg in g.segments:
        for k, v in seg.gathers.items():
            gathers[k] = gathers.get(k, 0) + v
        rows += seg.rows_copied
    out = {"n_nodes": float(len(g)), "n_groups": float(g.stats["n_groups"]), "n_forwards": float(g.stats["n_forwards"]),
           "n_signatures": float(len(g.sig_keys)), "rows_copied": float(rows)}
    out.update({f"gathers_{k}": float(v) for k, v in gathers.items()})
    model.zero_grad(set_to_none=True)
    return out


def run(config: dict) -> list[dict]:
    """Measure every implementation of one model (see module docstring); returns long records."""
    cfg = default_config(config.get("model", "bilstm"), quick=config.get("preset", "quick") != "full")
    cfg.update(config)
    for impl in cfg["impls"]:
        parse_impl(impl)
    if cfg.get("device", "cpu") != "cpu":
        raise DeviceUnavailable(f"the autobatch benchmark runs on CPU only (asked for {cfg['device']!r})")
    torch.set_num_threads(int(cfg["threads"]))
    torch.manual_seed(int(cfg["seed"]))
    if cfg["retain_heap"]:  # for every implementation alike, before any is timed (see memory.py)
        retain_heap()
    dims = dict(PRESETS[cfg["preset"]][cfg["model"]])
    dims.update(cfg.get("dims") or {})
    model = get_model(cfg["model"], **dims)
    n_batches = int(cfg["n_batches"])
    data = model.make_data(int(cfg["batch"]) * n_batches, seed=int(cfg["seed"]) + 1)
    batches = [data[i * cfg["batch"]:(i + 1) * cfg["batch"]] for i in range(n_batches)]
    flag = cfg.get("dynet")
    peers: dict[str, tuple[Any, Any]] = {}
    if flag is not None:
        dy = sys.modules.get("dynet")
        if dy is None:
            raise RuntimeError("config['dynet'] is set but DyNet is not imported: use dynet_peer.run_dynet")

        for v in PEER_VARIANTS.get(cfg["model"], ()):
            peer = build(dy, model, v)
            peers[f"dynet{int(flag)}" + ("" if v == "fused" else "-unfused")] = (peer, dy.SimpleSGDTrainer(peer.pc, float(cfg["lr"])))
    # first-step losses (before any update): every implementation computes the same function
    records: list[dict] = []
    base = {"model": cfg["model"], "preset": cfg["preset"], "batch": int(cfg["batch"]), "unit": model.unit,
            "n_tokens": sum(model.n_tokens(b) for b in batches) / n_batches, "dynet_flag": flag}
    for impl in list(cfg["impls"]) + list(peers):
        peer, _ = peers.get(impl, (None, None))
        fn = step_fn(model, batches[:1], impl, "infer", None, peer)
        records.append({**base, "variant": impl, "mode": "infer", "metric": "loss", "value": float(fn())})
    opt = torch.optim.SGD(model.parameters(), lr=float(cfg["lr"]))
    names = list(cfg["impls"]) + list(peers)
    baseline = cfg.get("baseline") or ("agenda" if "agenda" in names else names[0])
    if baseline not in names:
        raise UnknownName(f"baseline {baseline!r} is not one of the measured implementations {names}")
    for mode in cfg["modes"]:
        variants: dict[str, Variant] = {}
        for impl in names:
            peer, trainer = peers.get(impl, (None, None))
            variants[impl] = Variant(step_fn(model, batches, impl, mode, opt, peer, trainer), before=gc.collect)
        if cfg.get("phases") and "agenda" in names:  # inference: the forward phase is the whole step
            for ph in ("record", "forward") if mode == "train" else ("record",):
                variants[f"agenda:{ph}"] = Variant(step_fn(model, batches, f"agenda:{ph}", mode, opt), before=gc.collect)
        m = measure(variants, baseline=baseline, aa=True, warmup=int(cfg["warmup"]), rounds=int(cfg["rounds"]),
                    inner=1, max_seconds=cfg.get("max_seconds"), desc=f"{cfg['model']} {mode}")
        ctx = {**base, "mode": mode}
        for row in m.records(**ctx):
            row["throughput"] = ctx["batch"] / (row["value"] / 1e3)
            row["throughput_wall"] = ctx["batch"] / (row["wall_ms"] / 1e3)
            records.append(row)
        for a, b in PAIRS:
            if a in m.samples and b in m.samples:
                c = m.compare(a, b)
                records.append({**ctx, "metric": "speedup", "a": a, "b": b, "value": c.speedup, "lo": c.speedup_ci[0],
                                "hi": c.speedup_ci[1], "verdict": c.verdict, "clock": c.clock,
                                "noise_floor": c.noise_floor, "rounds": c.rounds, "text": c.format(),
                                **{f"wall_{k}": v for k, v in _wall(m, a, b).items()}})
        for w in m.warnings:
            records.append({**ctx, "metric": "warning", "text": w})
        for impl in names:
            if parse_impl(impl)[0] == "autobatch":
                for k, v in _graph_stats(model, batches[0], impl, mode).items():
                    records.append({**ctx, "variant": impl, "metric": "graph", "stat": k, "value": v})
    return records


def run_experiment(config: dict) -> list[dict]:
    """:func:`run`, with DyNet's variants measured in the same rounds when ``config["peer_dynet"]`` is
    true and DyNet is installed (the run then happens in a subprocess that imported DyNet with
    autobatching on, :func:`xflow.autobatch.dynet_peer.run_dynet`)."""
    cfg = {k: v for k, v in config.items() if k != "peer_dynet"}
    if config.get("peer_dynet"):
        if dynet_available():
            return run_dynet(cfg, 1)
    return run(cfg)


def _wall(m: Any, a: str, b: str) -> dict[str, Any]:
    c = m.compare(a, b, clock="wall")
    return {"value": c.speedup, "lo": c.speedup_ci[0], "hi": c.speedup_ci[1], "verdict": c.verdict}


def _dynet_child(cfg: dict, autobatch: int) -> list[dict]:
    """The subprocess of :func:`xflow.autobatch.dynet_peer.run_dynet`: DyNet imported with
    ``autobatch`` before anything else touches it, then the whole :func:`run`."""
    init_dynet(autobatch, int(cfg.get("seed", 0)), str(cfg.get("dynet_mem", "2048")))
    return run({**cfg, "dynet": autobatch})


if __name__ == "__main__":  # pragma: no cover - exercised through dynet_peer.run_dynet
    sys.stdout.write(json.dumps(_dynet_child(json.loads(sys.argv[1]), int(sys.argv[2])), default=str) + "\n")
