"""The one measurement core: every timing in xflow goes through :func:`measure`.

What it does, in order:

1. **warm-up** — every variant is called ``warmup`` times (interleaved) before anything is timed;
   with ``inner="auto"`` the warm-up also sizes how many calls one sample averages over, so that
   a sample lasts at least :data:`MIN_SAMPLE_S` (sub-millisecond calls are otherwise dominated by
   clock and dispatch jitter);
2. **interleaved rounds** — each of ``rounds`` rounds calls every variant once (``inner`` times
   back to back), in an order shuffled per round by a seeded RNG, so drift of a shared machine and
   position effects (caches warmed by the previous variant, a neighbour's spinning threads) fall
   on every variant alike; per-round samples are kept;
3. **clocks** — wall time always, and the calling thread's CPU time and the process's CPU time
   beside it. The *deciding* clock is thread CPU time when every variant runs on the calling
   thread alone (``threads=1``), else wall time; a wall/CPU gap larger than
   :data:`CONTENTION_GAP` on a single-threaded variant is reported as contention (the thread was
   descheduled while its clock ran);
4. **A/A control** — the baseline is measured a second time as its own variant (``aa=True``: the
   same callable; or a callable that builds an independent copy, e.g. a second ORT session of the
   same model, which also catches instance effects such as memory placement). The A/A effect's
   extent is the run's **noise floor**;
5. **ratios with intervals** — :meth:`Measurement.compare` gives time_a / time_b with a paired
   bootstrap interval over rounds (:func:`xflow.runtime.stats.paired_effect`) and a **verdict**
   (``faster`` / ``slower`` / ``same``, see :func:`xflow.runtime.stats.verdict`);
6. **load** — the 1-minute load average before and after, and the CPU (in cores) that *other*
   processes used during the run, from ``/proc/stat``; a warning is logged (and kept in
   ``Measurement.warnings``) when the machine was busy.

Decisions (keep a rewrite, switch a layer's algorithm, take a parallel plan) must use a verdict,
never a minimum or a single median: see :meth:`Measurement.best`.
"""
from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from xflow.runtime.stats import Effect, Verdict, noise_floor, paired_effect, verdict

__all__ = [
    "Variant",
    "Comparison",
    "Measurement",
    "measure",
    "Clock",
    "CLOCKS",
    "AA_SUFFIX",
    "MIN_SAMPLE_S",
    "CONTENTION_GAP",
    "BUSY_CORES",
    "format_speedup",
    "torch_variant",
    "CONDITIONS",
]

#: The run conditions kept with every measured number (:meth:`Measurement.conditions`): deciding
#: clock, rounds, load average before/after, other processes' CPU (cores), the busy flag, duration.
CONDITIONS = ("clock", "rounds", "load_before", "load_after", "foreign_cpu", "busy", "elapsed_s")

log = logging.getLogger(__name__)

Clock = Literal["wall", "thread", "process"]
CLOCKS: tuple[Clock, ...] = ("wall", "thread", "process")
#: Name suffix of the A/A control variant (``"<baseline>~aa"``).
AA_SUFFIX = "~aa"
#: With ``inner="auto"``, one sample averages enough calls to last at least this long (seconds).
MIN_SAMPLE_S = 0.002
#: Median wall / thread-CPU above this on a single-threaded variant counts as contention.
CONTENTION_GAP = 1.15
#: Other processes using more than this many cores during a run make it "busy".
BUSY_CORES = 0.3


@dataclass
class Variant:
    """One thing to time.

    Args:
        fn: the zero-argument call that is timed.
        threads: how many threads ``fn`` uses (1: runs on the calling thread, so thread CPU time
            can decide). Use ``None`` when unknown (wall time decides).
        before: called (untimed) right before each sample, e.g. ``torch.set_num_threads(n)``.
        sync: called inside the timed region after ``fn``, e.g. ``torch.cuda.synchronize``
            (device work is asynchronous; wall time decides for such variants).
    """

    fn: Callable[[], Any]
    threads: int | None = 1
    before: Callable[[], Any] | None = None
    sync: Callable[[], Any] | None = None


def torch_variant(fn: Callable[[], Any], *, threads: int | None = None, device: str = "cpu") -> Variant:
    """A :class:`Variant` for a torch callable: ``torch.set_num_threads(threads)`` before each sample
    (``None``: keep torch's current count), and ``torch.cuda.synchronize`` inside the timed region on
    a CUDA device (then wall time decides)."""
    import torch

    n = int(threads) if threads else torch.get_num_threads()
    before = (lambda: torch.set_num_threads(n)) if threads else None
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else None
    return Variant(fn, threads=n if sync is None else None, before=before, sync=sync)


def _as_variant(v: Variant | Callable[[], Any]) -> Variant:
    return v if isinstance(v, Variant) else Variant(fn=v)


@dataclass(frozen=True)
class Comparison:
    """Variant ``a`` against ``b`` on one clock.

    ``ratio`` = time_a / time_b (< 1: ``a`` is faster) with its interval ``ci``; ``speedup`` is
    ``1 / ratio`` (how many times faster ``a`` is) with ``speedup_ci``. ``verdict`` is ``faster``
    (``a`` faster than ``b``), ``slower`` or ``same``; ``noise_floor`` is the run's A/A noise
    (relative, 0.02 = ±2 %), ``min_effect`` the smallest effect the caller cares about.
    """

    a: str
    b: str
    clock: Clock
    ratio: float
    ci: tuple[float, float]
    verdict: Verdict
    noise_floor: float
    min_effect: float
    level: float
    rounds: int

    @property
    def speedup(self) -> float:
        """``1 / ratio``: how many times faster ``a`` is than ``b``."""
        return 1.0 / self.ratio

    @property
    def speedup_ci(self) -> tuple[float, float]:
        """Interval of :attr:`speedup` (``(1/hi, 1/lo)`` of the ratio's)."""
        return (1.0 / self.ci[1], 1.0 / self.ci[0])

    def format(self, what: Literal["speedup", "ratio"] = "speedup") -> str:
        """``"1.01× [0.98, 1.04] same"`` (speed-up of ``a`` over ``b`` by default)."""
        if what == "ratio":
            return f"{self.ratio:.3f} [{self.ci[0]:.3f}, {self.ci[1]:.3f}] {self.verdict}"
        return format_speedup(self.speedup, self.speedup_ci, self.verdict)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (ratio, ci, speedup, speedup_ci, verdict, noise_floor, …)."""
        return {"a": self.a, "b": self.b, "clock": self.clock, "ratio": self.ratio, "ci": list(self.ci),
                "speedup": self.speedup, "speedup_ci": list(self.speedup_ci), "verdict": self.verdict,
                "noise_floor": self.noise_floor, "min_effect": self.min_effect, "level": self.level,
                "rounds": self.rounds}


def format_speedup(speedup: float, ci: Sequence[float], verdict_: str) -> str:
    """``"1.01× [0.98, 1.04] same"``: a speed-up printed with its interval and verdict."""
    return f"{speedup:.3f}× [{ci[0]:.3f}, {ci[1]:.3f}] {verdict_}"


@dataclass
class Measurement:
    """Per-round samples of every variant, plus the conditions of the run.

    ``samples[name][clock]`` is an array of seconds per call, one per round. ``baseline`` is the
    variant others are compared against by default and ``aa`` the name of its A/A control (or
    ``None``). ``clock`` is the deciding clock.
    """

    samples: dict[str, dict[Clock, np.ndarray]]
    baseline: str | None
    aa: str | None
    clock: Clock
    threads: dict[str, int | None]
    inner: dict[str, int]
    load_before: float
    load_after: float
    foreign_cpu: float
    elapsed_s: float
    seed: int = 0
    warnings: list[str] = field(default_factory=list)

    # -- per variant ---------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Variant names, A/A control included."""
        return list(self.samples)

    @property
    def rounds(self) -> int:
        """Number of timed rounds."""
        first = next(iter(self.samples.values()))
        return int(first["wall"].size)

    def times(self, name: str, clock: Clock | None = None) -> np.ndarray:
        """Seconds per call of ``name``, one per round, on ``clock`` (default: the deciding one)."""
        return self.samples[name][clock or self.clock]

    def median_ms(self, name: str, clock: Clock | None = None) -> float:
        """Median milliseconds per call."""
        return float(np.median(self.times(name, clock))) * 1e3

    def iqr_ms(self, name: str, clock: Clock | None = None) -> float:
        """Inter-quartile range of the per-call milliseconds."""
        q1, q3 = np.percentile(self.times(name, clock), [25, 75])
        return float(q3 - q1) * 1e3

    def contention(self, name: str) -> float | None:
        """Median wall / median thread CPU of a single-threaded variant (≈1 on an idle core)."""
        if self.threads.get(name) != 1:
            return None
        cpu = float(np.median(self.samples[name]["thread"]))
        return float(np.median(self.samples[name]["wall"])) / cpu if cpu > 0 else None

    @property
    def busy(self) -> bool:
        """Whether other processes used more than :data:`BUSY_CORES` cores during the run."""
        return self.foreign_cpu > BUSY_CORES

    # -- comparisons ---------------------------------------------------------------------------
    def _effect(self, a: str, b: str, clock: Clock, level: float) -> Effect:
        return paired_effect(self.times(a, clock), self.times(b, clock), level=level, seed=self.seed)

    def noise_floor(self, clock: Clock | None = None, level: float = 0.95) -> float:
        """The A/A noise floor on ``clock`` (0 when the run has no A/A control)."""
        if self.aa is None or self.baseline is None or self.rounds < 2:
            return 0.0
        return noise_floor(self._effect(self.aa, self.baseline, clock or self.clock, level))

    def compare(self, a: str, b: str | None = None, *, clock: Clock | None = None,
                min_effect: float = 0.0, alpha: float = 0.05) -> Comparison:
        """``a`` against ``b`` (default: the baseline): ratio, ``1 - alpha`` interval, verdict."""
        b = b or self.baseline
        if b is None:
            raise ValueError("compare: no baseline given and the measurement has none")
        for n in (a, b):
            if n not in self.samples:
                raise KeyError(f"compare: no variant {n!r} (have {', '.join(self.samples)})")
        if self.rounds < 2:
            raise ValueError(f"compare: an interval needs at least 2 rounds, the run has {self.rounds}")
        clock = clock or self.clock
        level = 1.0 - alpha
        eff = self._effect(a, b, clock, level)
        floor = self.noise_floor(clock, level) if a != self.aa else 0.0
        return Comparison(a, b, clock, eff.ratio, eff.ci, verdict(eff, floor=floor, min_effect=min_effect),
                          floor, min_effect, level, eff.rounds)

    def comparisons(self, *, clock: Clock | None = None, min_effect: float = 0.0,
                    alpha: float = 0.05) -> dict[str, Comparison]:
        """Every variant (A/A control included) against the baseline (none with fewer than 2 rounds)."""
        if self.baseline is None or self.rounds < 2:
            return {}
        return {n: self.compare(n, self.baseline, clock=clock, min_effect=min_effect, alpha=alpha)
                for n in self.samples if n != self.baseline}

    def best(self, candidates: Sequence[str] | None = None, *, clock: Clock | None = None,
             min_effect: float = 0.0, alpha: float = 0.05) -> tuple[str, Comparison | None]:
        """The candidate to keep: the one with the lowest ratio among those *significantly faster*
        than the baseline, else the baseline itself (``(baseline, None)``).

        With ``k`` candidates each is tested at level ``1 - alpha / k`` (Bonferroni), so the chance
        of switching away from a baseline that none of them beats stays below ``alpha``.
        """
        if self.baseline is None:
            raise ValueError("best: the measurement has no baseline")
        cands = [c for c in (candidates or self.samples) if c not in (self.baseline, self.aa)]
        if not cands:
            return self.baseline, None
        adj = alpha / len(cands)
        wins = [c for c in (self.compare(n, clock=clock, min_effect=min_effect, alpha=adj) for n in cands)
                if c.verdict == "faster"]
        if not wins:
            return self.baseline, None
        top = min(wins, key=lambda c: c.ratio)
        return top.a, top

    # -- output --------------------------------------------------------------------------------
    def conditions(self) -> dict[str, Any]:
        """Run conditions recorded with every number (the fields named by :data:`CONDITIONS`)."""
        return {k: getattr(self, k) for k in CONDITIONS}

    def records(self, *, min_effect: float = 0.0, alpha: float = 0.05, **config: Any) -> list[dict[str, Any]]:
        """Long-format rows, one per variant (``metric="time_ms"``): median and IQR on the deciding
        clock, wall and CPU medians, contention, and against the baseline its ratio, interval,
        speed-up, verdict and noise floor, plus the run conditions and ``config``."""
        cmp = self.comparisons(min_effect=min_effect, alpha=alpha)
        cond = self.conditions()
        rows = []
        for n in self.samples:
            c = cmp.get(n)
            rows.append({
                **config, "variant": n, "baseline": self.baseline, "metric": "time_ms",
                "value": self.median_ms(n), "iqr_ms": self.iqr_ms(n),
                "wall_ms": self.median_ms(n, "wall"), "thread_cpu_ms": self.median_ms(n, "thread"),
                "process_cpu_ms": self.median_ms(n, "process"), "contention": self.contention(n),
                "inner": self.inner.get(n, 1), "threads_used": self.threads.get(n),
                "ratio": c.ratio if c else 1.0, "ci_lo": c.ci[0] if c else 1.0, "ci_hi": c.ci[1] if c else 1.0,
                "speedup": c.speedup if c else 1.0,
                "speedup_lo": c.speedup_ci[0] if c else 1.0, "speedup_hi": c.speedup_ci[1] if c else 1.0,
                "verdict": c.verdict if c else "baseline", "noise_floor": self.noise_floor(),
                "is_aa_control": n == self.aa, **cond,
            })
        return rows

    def summary(self) -> dict[str, Any]:
        """JSON-able summary: per-variant medians and comparisons against the baseline."""
        return {"conditions": self.conditions(), "noise_floor": self.noise_floor(), "baseline": self.baseline,
                "variants": {n: {"median_ms": self.median_ms(n), "iqr_ms": self.iqr_ms(n),
                                 "wall_ms": self.median_ms(n, "wall"), "thread_cpu_ms": self.median_ms(n, "thread"),
                                 "contention": self.contention(n)} for n in self.samples},
                "comparisons": {n: c.as_dict() for n, c in self.comparisons().items()},
                "warnings": list(self.warnings)}


# -- the timing loop -------------------------------------------------------------------------------
def _read_cpu_jiffies() -> tuple[float, float] | None:
    """(busy jiffies of the whole machine, jiffies of this process) from /proc, or None."""
    try:
        with open("/proc/stat") as f:
            parts = f.readline().split()[1:]
        vals = [float(x) for x in parts]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0.0)
        busy = sum(vals[:8]) - idle
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        own = float(fields[11]) + float(fields[12])  # utime + stime
        return busy, own
    except (OSError, ValueError, IndexError):
        return None


def _loadavg() -> float:
    try:
        return float(os.getloadavg()[0])
    except OSError:
        return float("nan")


def _sample(v: Variant, inner: int) -> tuple[float, float, float]:
    if v.before is not None:
        v.before()
    fn, sync = v.fn, v.sync
    p0, t0, w0 = time.process_time(), time.thread_time(), time.perf_counter()
    for _ in range(inner):
        fn()
    if sync is not None:
        sync()
    w1, t1, p1 = time.perf_counter(), time.thread_time(), time.process_time()
    return (w1 - w0) / inner, (t1 - t0) / inner, (p1 - p0) / inner


def measure(
    variants: Mapping[str, Variant | Callable[[], Any]],
    *,
    baseline: str | None = None,
    aa: bool | Variant | Callable[[], Any] = True,
    warmup: int = 3,
    rounds: int = 20,
    inner: int | Literal["auto"] = "auto",
    clock: Clock | Literal["auto"] = "auto",
    seed: int = 0,
    max_seconds: float | None = None,
    min_rounds: int = 5,
    progress: bool = False,
    desc: str = "measure",
) -> Measurement:
    """Time ``variants`` (name → :class:`Variant` or zero-argument callable) in interleaved rounds.

    Args:
        baseline: the variant others are compared against (default: the first).
        aa: add an A/A control ``"<baseline>~aa"``: ``True`` re-times the baseline's own callable;
            a callable or :class:`Variant` is timed as the control (an independent copy of the
            baseline: a second session, a second module); ``False`` for none (noise floor 0).
        warmup: untimed calls of each variant before the rounds.
        rounds: timed rounds (each calls every variant once, in a seeded shuffled order); at least 2
            for any comparison (an interval needs two rounds).
        inner: calls per sample (``"auto"``: enough for :data:`MIN_SAMPLE_S`, sized in warm-up).
        clock: deciding clock (``"auto"``: thread CPU time when every variant has ``threads=1`` and
            no ``sync``, else wall time).
        max_seconds: stop after this many seconds of rounds (at least ``min_rounds`` are run).
        progress: show a tqdm bar over rounds.

    Returns:
        a :class:`Measurement` (per-round samples of all three clocks, conditions, warnings).
    """
    if not variants:
        raise ValueError("measure: no variants")
    if rounds < 1:
        raise ValueError(f"measure: rounds must be >= 1 (>= 2 for an interval), got {rounds}")
    if warmup < 0:
        raise ValueError(f"measure: warmup must be >= 0, got {warmup}")
    if max_seconds is not None and not (max_seconds > 0):
        raise ValueError(f"measure: max_seconds must be > 0, got {max_seconds}")
    vs: dict[str, Variant] = {str(k): _as_variant(v) for k, v in variants.items()}
    base = baseline if baseline is not None else next(iter(vs))
    if base not in vs:
        raise KeyError(f"measure: baseline {base!r} is not a variant (have {', '.join(vs)})")
    aa_name: str | None = None
    if aa is not False and aa is not None:
        aa_name = base + AA_SUFFIX
        if aa is True:
            vs[aa_name] = vs[base]
        else:
            ctl = _as_variant(aa)
            if ctl.threads == 1 and vs[base].threads != 1:
                ctl = Variant(ctl.fn, vs[base].threads, ctl.before, ctl.sync)
            vs[aa_name] = ctl
    if clock == "auto":
        clock = "thread" if all(v.threads == 1 and v.sync is None for v in vs.values()) else "wall"
    if clock not in CLOCKS:
        raise ValueError(f"measure: unknown clock {clock!r} (use one of {', '.join(CLOCKS)} or auto)")
    names = list(vs)

    # warm-up (interleaved), sizing inner calls on the way
    per_call: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(warmup):
        for n in names:
            per_call[n].append(_sample(vs[n], 1)[0])
    if inner == "auto":
        inners = {}
        for n in names:
            t = float(np.median(per_call[n])) if per_call[n] else MIN_SAMPLE_S
            inners[n] = max(1, min(1000, math.ceil(MIN_SAMPLE_S / max(t, 1e-9))))
    else:
        if int(inner) < 1:
            raise ValueError(f"measure: inner must be >= 1, got {inner}")
        inners = {n: int(inner) for n in names}
    if aa_name is not None:
        inners[aa_name] = inners[base]  # the control must be timed exactly like the baseline

    samples: dict[str, dict[Clock, list[float]]] = {n: {c: [] for c in CLOCKS} for n in names}
    rng = random.Random(seed)
    load_before = _loadavg()
    j0 = _read_cpu_jiffies()
    w_start = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=rounds, desc=desc, leave=False)
    done = 0
    for r in range(rounds):
        order = list(names)
        rng.shuffle(order)
        for n in order:
            w, t, p = _sample(vs[n], inners[n])
            s = samples[n]
            s["wall"].append(w)
            s["thread"].append(t)
            s["process"].append(p)
        done += 1
        if bar is not None:
            bar.update(1)
        if max_seconds is not None and done >= min_rounds and time.perf_counter() - w_start > max_seconds:
            break
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - w_start
    j1 = _read_cpu_jiffies()
    load_after = _loadavg()
    foreign = 0.0
    if j0 is not None and j1 is not None and elapsed > 0:
        hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        foreign = max(0.0, ((j1[0] - j0[0]) - (j1[1] - j0[1])) / hz / elapsed)

    arr = {n: {c: np.maximum(np.asarray(v, dtype=float), 1e-9) for c, v in s.items()} for n, s in samples.items()}
    m = Measurement(arr, base, aa_name, clock, {n: v.threads for n, v in vs.items()}, inners,
                    load_before, load_after, foreign, elapsed, seed)
    if m.busy:
        m.warnings.append(f"machine busy: other processes used {foreign:.2f} cores during the run "
                          f"(load {load_before:.2f} → {load_after:.2f}); intervals are wider and wall "
                          f"times inflated")
    gaps = {n: g for n in names if (g := m.contention(n)) is not None and g > CONTENTION_GAP}
    if gaps:
        worst = max(gaps, key=gaps.get)
        m.warnings.append(f"contention: {len(gaps)} single-threaded variant(s) ran with wall/CPU up to "
                          f"{gaps[worst]:.2f} ({worst}); thread CPU time decides")
    for w in m.warnings:
        log.warning(w)
    return m
