"""Interleaved wall-clock timing of several callables on one device (medians and IQR).

Interleaving (every round calls each candidate once, in a fresh seeded random order) spreads the
drift of a shared, noisy machine over all candidates instead of biasing whichever ran last, and
keeps any candidate from always following the same neighbour (e.g. a cache-thrashing FFT).
"""
from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Mapping

import torch

__all__ = ["sync", "interleaved_times", "median_ms", "iqr_ms", "min_ms"]


def sync(device: str | torch.device) -> None:
    """Wait for queued device work (CUDA); no-op on CPU."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _once(fn: Callable[[], object], device: str) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def interleaved_times(
    fns: Mapping[str, Callable[[], object]],
    *,
    repeats: int = 5,
    warmup: int = 1,
    device: str = "cpu",
    prune_factor: float | None = None,
    baseline: str | None = None,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Seconds per call of each ``fns[name]``, ``repeats`` interleaved rounds after ``warmup``.

    With ``prune_factor`` and ``baseline``, a candidate whose first timed call is slower than
    ``prune_factor ×`` the baseline's is not repeated (its single time is kept): hopeless
    candidates (e.g. FFT on 3×3 layers) do not dominate tuning time.
    """
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    sync(device)
    out: dict[str, list[float]] = {n: [] for n in names}
    active = list(names)
    rng = random.Random(seed)
    for r in range(repeats):
        order = list(active)
        rng.shuffle(order)
        for n in order:
            out[n].append(_once(fns[n], device))
        if r == 0 and prune_factor and baseline in out:
            ref = out[baseline][0]
            active = [n for n in active if n == baseline or out[n][0] <= prune_factor * ref]
    return out


def median_ms(times: list[float]) -> float:
    """Median of ``times`` (seconds) in milliseconds."""
    return 1e3 * statistics.median(times) if times else float("nan")


def iqr_ms(times: list[float]) -> float:
    """Interquartile range of ``times`` (seconds) in milliseconds (0 for fewer than 2 values)."""
    if len(times) < 2:
        return 0.0
    q = statistics.quantiles(times, n=4, method="inclusive")
    return 1e3 * (q[2] - q[0])


def min_ms(times: list[float]) -> float:
    """Fastest of ``times`` (seconds) in milliseconds: on a shared machine noise only ever adds
    time, so the minimum estimates a kernel's own cost best (used to *choose*; medians are reported)."""
    return 1e3 * min(times) if times else float("nan")
