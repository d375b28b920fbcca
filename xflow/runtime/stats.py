"""The statistics behind every comparison xflow prints: paired ratios, bootstrap intervals, verdicts.

Pure functions over per-round samples (no timing here, so they can be tested on seeded synthetic
data). Conventions: ``a`` and ``b`` are arrays of seconds per call, one entry per interleaved round,
``a[r]`` and ``b[r]`` measured in the same round. The effect of ``a`` against ``b`` is the
20 %-trimmed mean of the per-round log ratios,

.. math::

    \\hat\\theta = \\operatorname{tmean}_{0.2}\\big(\\log a_r - \\log b_r\\big)_{r=1..R},
    \\qquad \\text{ratio} = e^{\\hat\\theta} \\;(= \\text{time}_a / \\text{time}_b),

and its ``1 - alpha`` confidence interval is the percentile interval of :math:`\\hat\\theta` over
``n_boot`` paired bootstrap resamples of the rounds (a resample keeps each round's pair together,
so a slow round slows both sides and cancels). Pairing removes the machine's drift; the log makes
the ratio symmetric (2× slower and 2× faster are equally far from 1); trimming keeps one
descheduled round from moving the estimate while staying smooth enough for the bootstrap.

A *verdict* then says ``faster`` (``a`` is faster than ``b``), ``slower`` or ``same``:
``same`` whenever the interval contains 1 **or** the effect lies inside the noise floor
(:func:`noise_floor` of an A/A control: the baseline measured again as its own variant in the same
run) **or** below a requested minimum effect.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["Effect", "Verdict", "trimmed_mean", "paired_effect", "noise_floor", "verdict", "TRIM",
           "N_BOOT"]

Verdict = Literal["faster", "slower", "same"]

#: Fraction trimmed from each end of the per-round log ratios.
TRIM = 0.2
#: Bootstrap resamples per interval.
N_BOOT = 2000


def trimmed_mean(x: np.ndarray, trim: float = TRIM, axis: int = -1) -> np.ndarray:
    """Mean of ``x`` along ``axis`` after dropping ``floor(trim * n)`` values from each end."""
    x = np.sort(np.asarray(x, dtype=float), axis=axis)
    n = x.shape[axis]
    k = int(math.floor(trim * n))
    if n - 2 * k < 1:
        k = (n - 1) // 2
    sl = [slice(None)] * x.ndim
    sl[axis] = slice(k, n - k)
    return x[tuple(sl)].mean(axis=axis)


@dataclass(frozen=True)
class Effect:
    """Paired effect of ``a`` against ``b``: ``ratio`` = time_a / time_b with its interval ``ci``."""

    ratio: float
    ci: tuple[float, float]
    rounds: int
    level: float

    @property
    def log_ratio(self) -> float:
        """``log(ratio)`` (negative: ``a`` is faster)."""
        return math.log(self.ratio)


def paired_effect(a: np.ndarray, b: np.ndarray, *, level: float = 0.95, n_boot: int = N_BOOT,
                  seed: int = 0, trim: float = TRIM) -> Effect:
    """Ratio time_a / time_b (trimmed mean of per-round log ratios) with a paired bootstrap interval.

    ``a`` and ``b`` hold one positive sample per round (same length, ≥ 2). ``level`` is the
    interval's nominal coverage. Deterministic for a given ``seed``.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired_effect: need two 1-D arrays of equal length, got {a.shape} and {b.shape}")
    n = a.size
    if n < 2:
        raise ValueError(f"paired_effect: need at least 2 rounds, got {n}")
    if not (np.all(a > 0) and np.all(b > 0)):
        raise ValueError("paired_effect: samples must be positive times")
    if not 0 < level < 1:
        raise ValueError(f"paired_effect: level must be in (0, 1), got {level}")
    d = np.log(a) - np.log(b)
    est = float(trimmed_mean(d, trim))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(int(n_boot), n))
    boot = trimmed_mean(d[idx], trim, axis=1)
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(boot, [tail, 1.0 - tail])
    return Effect(math.exp(est), (math.exp(float(lo)), math.exp(float(hi))), n, level)


def noise_floor(aa: Effect) -> float:
    """Relative noise floor from an A/A effect: how far from 1 two measurements of the *same* thing
    land in this run, ``exp(max(|θ|, |lo|, |hi|)) - 1`` in log space (0.02 = ±2 %)."""
    logs = [abs(aa.log_ratio), abs(math.log(aa.ci[0])), abs(math.log(aa.ci[1]))]
    return math.exp(max(logs)) - 1.0


def verdict(effect: Effect, *, floor: float = 0.0, min_effect: float = 0.0) -> Verdict:
    """``faster`` / ``slower`` when the interval excludes 1 and ``|log ratio|`` exceeds both
    ``log(1 + floor)`` and ``log(1 + min_effect)``; else ``same``."""
    if floor < 0 or min_effect < 0 or not (math.isfinite(floor) and math.isfinite(min_effect)):
        raise ValueError(f"verdict: floor and min_effect must be finite and >= 0, got {floor}, {min_effect}")
    lo, hi = effect.ci
    margin = max(math.log1p(floor), math.log1p(min_effect))
    theta = effect.log_ratio
    if hi < 1.0 and -theta > margin:
        return "faster"
    if lo > 1.0 and theta > margin:
        return "slower"
    return "same"
