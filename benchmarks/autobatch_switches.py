"""Autobatching design switches, each measured in-process: one step with the switch off vs on.

Each switch is a module attribute that changes *how* a step is computed, never *what* (tests pin
that every setting gives the same loss and gradients):

* ``parser.defer_losses`` — the parser records its loss terms after the last transition (one batch)
  instead of at every step (one small batch per forward);
* ``models.fuse_activations`` — ``tanh(affine(…))`` as one fused ``affine_tanh`` node (the parser's
  compositions and state MLP, the taggers' MLP);
* ``executor.pool_weight_grads`` — one weight-gradient product per weight for all incremental
  forwards of a graph, instead of one per forward;
* ``executor.defer_weight_grads`` — one weight-gradient product per weight and forward over every
  group that used it, instead of one rank-B update per group.
* ``memory.retain_heap`` — freed memory stays in the process heap (glibc ``mallopt``), the allocator
  side of DyNet's memory pools; *off* restores glibc's starting thresholds and trims the heap before
  each sample (:func:`xflow.autobatch.memory.release_heap`), as in a process that never retained it.
* ``schedule.reader_order`` — batches with no produced operand that no reader is ordered by (the
  embedding lookups) laid out in their first reader's order, so those reads are views, not copies;
* ``executor.hoist_projections`` — a term ``W x`` that many groups read from one complete source (an
  LSTM's input projection over all time steps) computed once as one large product
  (:meth:`xflow.autobatch.executor._Runner.hoist_plan`); measured on training and on inference steps;
* ``memory.quiet_gc`` — the cyclic garbage collector with the process's setup frozen out of it and
  young collections every 20k allocations (:func:`xflow.autobatch.memory.quiet_gc`); *off* is
  CPython's default collector (:func:`~xflow.autobatch.memory.restore_gc`). Measured without the
  untimed ``gc.collect()`` that precedes every other sample (it would empty the generations, and the
  full collections this switch avoids would not occur in the sample). Off by default: neither the
  library nor the throughput benchmark applies it unless this switch shows a gain.

A model entry ``name:infer`` measures an inference step (the batched forward, no gradient) instead
of a training step. Per (model, switch): the measurement core times ``off`` and ``on`` in interleaved
shuffled rounds, thread CPU time deciding (torch on one thread), with an A/A control of ``off``, and
reports the speed-up of ``on`` over ``off`` with its paired 95 % interval and verdict, and beside it
the mean thread CPU time per step spent in Python's cyclic garbage collector under each setting.
DyNet's sizes, minibatch 64; the SGD update runs with learning rate 0, so that every round parses
the same sentences the same way (the parser follows its own predictions). Writes ``results/autobatch/switches.csv``; the
docs table ``autobatch.switches`` is generated from it (``make report``)::

    .venv/bin/python benchmarks/autobatch_switches.py            # ~5 min on 2 cores
    .venv/bin/python benchmarks/autobatch_switches.py --rounds 4 --switches parser.defer_losses
"""
from __future__ import annotations

import argparse
import gc
import importlib
import sys
import time
from collections.abc import Callable

import torch

from xflow.autobatch.graph import Graph
from xflow.autobatch.models import get_model
from xflow.autobatch.presets import PRESETS
from xflow.clitools import int_range, name_list
from xflow.runtime.measure import Variant, format_speedup, measure
from xflow.tables import load_result, save_result

def _flag(modname: str, attr: str) -> tuple[Callable[[bool], None], Callable[[], bool]]:
    """``(set, get)`` of a module's boolean switch attribute."""
    mod = importlib.import_module(modname)
    return (lambda v: setattr(mod, attr, v)), (lambda: bool(getattr(mod, attr)))


def _heap() -> tuple[Callable[[bool], None], Callable[[], bool]]:
    """``(set, get)`` of heap retention (two functions, not a flag)."""
    from xflow.autobatch import memory

    return (lambda v: memory.retain_heap() if v else memory.release_heap()), memory.heap_retained


def _gc() -> tuple[Callable[[bool], None], Callable[[], bool]]:
    """``(set, get)`` of the benchmark's garbage-collector setting (freeze + raised threshold)."""
    from xflow.autobatch import memory

    return (lambda v: memory.quiet_gc() if v else memory.restore_gc()), memory.gc_quiet


#: switch name -> (its (set, get) pair, models it is measured on)
SWITCHES: dict[str, tuple[Callable[[], tuple[Callable[[bool], None], Callable[[], bool]]], tuple[str, ...]]] = {
    "parser.defer_losses": (lambda: _flag("xflow.autobatch.models.parser", "defer_losses"), ("parser",)),
    "models.fuse_activations": (lambda: _flag("xflow.autobatch.models.base", "fuse_activations"), ("parser", "bilstm")),
    "executor.pool_weight_grads": (lambda: _flag("xflow.autobatch.executor", "pool_weight_grads"), ("parser",)),
    "executor.defer_weight_grads": (lambda: _flag("xflow.autobatch.executor", "defer_weight_grads"),
                                    ("parser", "bilstm")),
    "memory.retain_heap": (_heap, ("parser", "bilstm", "treelstm")),
    "schedule.reader_order": (lambda: _flag("xflow.autobatch.schedule", "reader_order"), ("parser", "bilstm")),
    "executor.hoist_projections": (lambda: _flag("xflow.autobatch.executor", "hoist_projections"),
                                   ("bilstm", "bilstm:infer", "bilstm-char:infer")),
    "memory.quiet_gc": (_gc, ("parser", "bilstm", "treelstm")),
}
OUT = "autobatch/switches.csv"


def _step(model, batches, opt, train: bool = True) -> Callable[[], None]:
    state = {"i": 0}

    def step() -> None:
        b = batches[state["i"] % len(batches)]
        state["i"] += 1
        if not train:
            with torch.no_grad(), Graph("agenda") as g:
                g.forward_batch(model.loss_autobatch(b)).sum()
            return
        with Graph("agenda") as g:
            loss = g.forward_batch(model.loss_autobatch(b)).sum()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def _before(setter: Callable[[bool], None], value: bool, collect: bool = True) -> Callable[[], None]:
    def before() -> None:  # untimed, right before each sample
        if collect:
            gc.collect()
        setter(value)
    return before


#: Switches measured without the untimed ``gc.collect()`` before each sample: a collection by hand
#: empties the generations, so the collections the switch is about would not happen in the sample.
NO_COLLECT = {"memory.quiet_gc"}


class _GcClock:
    """Thread CPU time spent in the cyclic garbage collector during each variant's steps (a
    ``gc.callbacks`` hook): mean milliseconds per step, warm-up included."""

    def __init__(self) -> None:
        self.ms = {"off": 0.0, "on": 0.0}
        self.calls = {"off": 0, "on": 0}
        self.current: str | None = None
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.thread_time()
        elif self.current is not None:
            self.ms[self.current] += (time.thread_time() - self._t0) * 1e3

    def wrap(self, label: str, step: Callable[[], None]) -> Callable[[], None]:
        def timed() -> None:
            self.current = label
            self.calls[label] += 1
            try:
                step()
            finally:
                self.current = None
        return timed

    def per_step(self, label: str) -> float:
        return self.ms[label] / max(self.calls[label], 1)


def run_one(switch: str, model_spec: str, rounds: int, batch: int = 64) -> list[dict]:
    """Measure ``switch`` off vs on for one model (``name`` or ``name:infer``); returns result rows
    (the default value restored)."""
    model_name, _, mode = model_spec.partition(":")
    train = mode != "infer"
    setter, getter = SWITCHES[switch][0]()
    default = getter()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = get_model(model_name, **PRESETS["full"][model_name])
    data = model.make_data(2 * batch, seed=1)
    batches = [data[:batch], data[batch:]]
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    gc_clock = _GcClock()
    try:
        collect = switch not in NO_COLLECT
        gc.callbacks.append(gc_clock)
        res = measure({"off": Variant(gc_clock.wrap("off", _step(model, batches, opt, train)), threads=1,
                                      before=_before(setter, False, collect)),
                       "on": Variant(gc_clock.wrap("on", _step(model, batches, opt, train)), threads=1,
                                     before=_before(setter, True, collect))},
                      warmup=2, rounds=rounds, inner=2, desc=switch)
    finally:
        gc.callbacks.remove(gc_clock)
        setter(default)
    c = res.compare("on", "off")
    cond = res.conditions()
    return [{"switch": switch, "model": model_name, "mode": "train" if train else "infer", "batch": batch, "default": bool(default),
             "off_ms": res.median_ms("off"), "on_ms": res.median_ms("on"),
             "value": c.speedup, "lo": c.speedup_ci[0], "hi": c.speedup_ci[1], "verdict": c.verdict,
             "noise_floor": c.noise_floor, "wall_off_ms": res.median_ms("off", "wall"),
             "wall_on_ms": res.median_ms("on", "wall"), "gc_off_ms": gc_clock.per_step("off"),
             "gc_on_ms": gc_clock.per_step("on"), **cond}]


def _kept_rows(out: str, names: list[str]) -> list[dict]:
    """Rows of the existing result file for switches not measured now (a subset run updates its rows
    and keeps the others, each with its own git sha and conditions)."""
    try:
        df = load_result(out)
    except FileNotFoundError:
        return []
    if "switch" not in df.columns:
        return []
    keep = df[~df.switch.isin(names) & df.switch.isin(list(SWITCHES))]
    return keep.to_dict("records")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--switches", type=name_list(list(SWITCHES)), default=",".join(SWITCHES),
                    help=f"comma-separated subset of {','.join(SWITCHES)}")
    ap.add_argument("--rounds", type=int_range(2, hint="an interval needs two rounds"), default=10,
                    help="interleaved rounds per switch")
    ap.add_argument("--out", default=OUT, help=f"result file under results/ (default {OUT})")
    args = ap.parse_args(argv)
    names = args.switches.split(",")
    rows: list[dict] = _kept_rows(args.out, names)
    for s in names:
        for m in SWITCHES[s][1]:
            t0 = time.perf_counter()
            rows.extend(run_one(s, m, args.rounds))
            r = rows[-1]
            print(f"{s:30s} {m:8s} off {r['off_ms']:7.1f} ms  on {r['on_ms']:7.1f} ms  "
                  f"on vs off {format_speedup(r['value'], (r['lo'], r['hi']), r['verdict'])}  "
                  f"(A/A ±{100 * r['noise_floor']:.1f}%, busy={r['busy']}, {time.perf_counter() - t0:.0f} s)",
                  flush=True)
            save_result(rows, args.out)  # after every finished unit
    return 0


if __name__ == "__main__":
    sys.exit(main())
