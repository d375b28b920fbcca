"""Latency measurement with ONNX Runtime: warm-up, repeats, median and inter-quartile range.

Why the median and IQR: on a shared machine single runs are disturbed by other processes; the
median is robust to those outliers and the IQR (75th − 25th percentile) shows the spread.
Comparisons (:func:`compare_latency`, :func:`measure_interleaved`) interleave the repeats of the
variants (A B B A A B …) so slow drifts of the machine hit every variant equally, and report
ratios of medians taken in the same run.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Unpack

from xflow.runtime.session import ModelLike, SessionSettings, make_session, random_inputs

__all__ = ["LatencyStats", "LatencyComparison", "measure_latency", "compare_latency",
           "measure_interleaved", "summarize"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LatencyStats:
    """Summary of repeated timings in milliseconds (``samples_ms`` keeps the raw values)."""

    median_ms: float
    iqr_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    samples_ms: list[float] = field(default_factory=list)

    @property
    def repeats(self) -> int:
        """Number of timed runs."""
        return len(self.samples_ms)

    def as_dict(self, samples: bool = False) -> dict[str, Any]:
        """Plain dict (without raw samples unless ``samples=True``)."""
        d = asdict(self)
        if not samples:
            d.pop("samples_ms")
        d["repeats"] = self.repeats
        return d


@dataclass(frozen=True)
class LatencyComparison:
    """Two interleaved measurements; ``ratio = a.median_ms / b.median_ms`` (< 1: ``a`` is faster)."""

    a: LatencyStats
    b: LatencyStats

    @property
    def ratio(self) -> float:
        """Median latency of ``a`` over that of ``b``."""
        return self.a.median_ms / self.b.median_ms if self.b.median_ms > 0 else float("nan")

    @property
    def speedup(self) -> float:
        """How many times faster ``a`` is than ``b`` (``1 / ratio``)."""
        return 1.0 / self.ratio if self.ratio else float("nan")


def summarize(samples_ms: list[float]) -> LatencyStats:
    """Median, IQR (75th − 25th percentile), mean, min, max of ``samples_ms``."""
    import numpy as np

    if not samples_ms:
        raise ValueError("summarize: no samples")
    a = np.asarray(samples_ms, dtype=float)
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return LatencyStats(float(med), float(q3 - q1), float(a.mean()), float(a.min()), float(a.max()),
                        [float(x) for x in a])


def _session_kwargs(kw: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`SessionSettings` keys of ``kw`` (others are ignored; missing ones take
    :func:`make_session`'s defaults)."""
    return {k: kw[k] for k in SessionSettings.__annotations__ if k in kw}


def _check_settings(fn: str, settings: Mapping[str, Any]) -> None:
    """Reject keywords that are not :class:`SessionSettings` (as an explicit signature would)."""
    unknown = sorted(set(settings) - set(SessionSettings.__annotations__))
    if unknown:
        raise TypeError(f"{fn}() got an unexpected keyword argument {unknown[0]!r}")


def measure_interleaved(
    variants: Mapping[str, tuple[ModelLike, Mapping[str, Any]]],
    *,
    warmup: int = 5,
    repeats: int = 30,
    inputs: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
) -> dict[str, LatencyStats]:
    """Time several (model, session settings) variants with interleaved repeats.

    ``variants`` maps a label to ``(model, settings)`` where settings are :func:`make_session`
    keywords (``level``, ``intra_threads``, ``inter_threads``, ``mode``, ``device``). Each variant
    gets ``warmup`` untimed runs, then ``repeats`` rounds run every variant once per round, the order
    reversed every other round. ``inputs`` optionally maps labels to feeds (default: seeded
    :func:`~xflow.runtime.session.random_inputs` of each model).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    sessions, feeds = {}, {}
    for label, (model, settings) in variants.items():
        sessions[label] = make_session(model, **_session_kwargs(settings))
        feeds[label] = dict((inputs or {}).get(label) or random_inputs(sessions[label], seed=seed))
    for label, sess in sessions.items():
        for _ in range(max(0, warmup)):
            sess.run(None, feeds[label])
    samples: dict[str, list[float]] = {label: [] for label in sessions}
    order = list(sessions)
    clock = time.perf_counter
    for r in range(repeats):
        for label in (order if r % 2 == 0 else order[::-1]):
            sess, feed = sessions[label], feeds[label]
            t0 = clock()
            sess.run(None, feed)
            samples[label].append((clock() - t0) * 1e3)
    return {label: summarize(s) for label, s in samples.items()}


def measure_latency(
    model: ModelLike,
    *,
    warmup: int = 5,
    repeats: int = 30,
    inputs: Mapping[str, Any] | None = None,
    seed: int = 0,
    **settings: Unpack[SessionSettings],
) -> LatencyStats:
    """Latency of one ``model`` run in ORT with the given ``settings`` (:class:`SessionSettings`:
    ``level``, ``intra_threads``, ``inter_threads``, ``mode``, ``device``; defaults of
    :func:`make_session`)."""
    _check_settings("measure_latency", settings)
    res = measure_interleaved({"model": (model, settings)}, warmup=warmup, repeats=repeats,
                              inputs={"model": inputs} if inputs is not None else None, seed=seed)
    return res["model"]


def compare_latency(
    a: ModelLike,
    b: ModelLike,
    *,
    warmup: int = 5,
    repeats: int = 30,
    inputs: Mapping[str, Any] | None = None,
    seed: int = 0,
    **settings: Unpack[SessionSettings],
) -> LatencyComparison:
    """Measure ``a`` and ``b`` with the same ``settings`` (as :func:`measure_latency`), repeats
    interleaved; ``.ratio = a / b``.

    ``inputs`` (a feed dict) is given to both models; by default each gets seeded random inputs
    (identical when their input signatures agree).
    """
    _check_settings("compare_latency", settings)
    feeds = {"a": inputs, "b": inputs} if inputs is not None else None
    res = measure_interleaved({"a": (a, settings), "b": (b, settings)}, warmup=warmup, repeats=repeats,
                              inputs=feeds, seed=seed)
    return LatencyComparison(res["a"], res["b"])
