"""ONNX Runtime latency through the one measurement core (:mod:`xflow.runtime.measure`).

:func:`measure_models` builds one ORT session per variant (``{label: (model, settings)}``, created
in a seeded shuffled order: the first sessions created measured slower on this machine), plus a
*second, independent session* of the baseline as the A/A control, and times them in interleaved
rounds with :func:`~xflow.runtime.measure.measure`. Sequential sessions with one intra-op thread run
on the calling thread, so thread CPU time decides for them; anything multi-threaded is decided by
wall time.

:func:`compare_latency` is the two-model form: ``ratio`` = time_a / time_b with its interval and
verdict. :func:`measure_latency` and :func:`measure_interleaved` return per-variant
:class:`LatencyStats` (median, IQR, … of the deciding clock) for callers that only report times.
"""
from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Unpack

from xflow.runtime.backend import make_backend_session
from xflow.runtime.measure import Comparison, Measurement, Variant, measure
from xflow.runtime.session import ModelLike, SessionSettings, make_session, random_inputs

__all__ = ["LatencyStats", "LatencyComparison", "measure_models", "measure_on_backend", "session_pool", "measure_latency",
           "compare_latency", "measure_interleaved", "summarize", "ort_variant"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LatencyStats:
    """Summary of repeated timings in milliseconds (``samples_ms`` keeps the per-round values)."""

    median_ms: float
    iqr_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    samples_ms: list[float] = field(default_factory=list)
    clock: str = "wall"

    @property
    def repeats(self) -> int:
        """Number of timed rounds."""
        return len(self.samples_ms)

    def as_dict(self, samples: bool = False) -> dict[str, Any]:
        """Plain dict (without raw samples unless ``samples=True``)."""
        d = asdict(self)
        if not samples:
            d.pop("samples_ms")
        d["repeats"] = self.repeats
        return d


def summarize(samples_ms: list[float], clock: str = "wall") -> LatencyStats:
    """Median, IQR (75th − 25th percentile), mean, min, max of ``samples_ms`` (descriptive only:
    decisions use :meth:`Measurement.compare`)."""
    import numpy as np

    if not len(samples_ms):
        raise ValueError("summarize: no samples")
    a = np.asarray(samples_ms, dtype=float)
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return LatencyStats(float(med), float(q3 - q1), float(a.mean()), float(a.min()), float(a.max()),
                        [float(x) for x in a], clock)


def stats_of(m: Measurement, name: str) -> LatencyStats:
    """:class:`LatencyStats` of variant ``name`` on the measurement's deciding clock."""
    return summarize(list(m.times(name) * 1e3), m.clock)


@dataclass(frozen=True)
class LatencyComparison:
    """Two models measured in one run: ``ratio`` = time_a / time_b with interval ``ci`` and verdict."""

    a: LatencyStats
    b: LatencyStats
    comparison: Comparison
    measurement: Measurement

    @property
    def ratio(self) -> float:
        """time_a / time_b (paired estimate; < 1: ``a`` is faster)."""
        return self.comparison.ratio

    @property
    def ci(self) -> tuple[float, float]:
        """Interval of :attr:`ratio`."""
        return self.comparison.ci

    @property
    def verdict(self) -> str:
        """``faster`` (``a`` faster than ``b``), ``slower`` or ``same``."""
        return self.comparison.verdict

    @property
    def speedup(self) -> float:
        """How many times faster ``a`` is than ``b`` (``1 / ratio``)."""
        return self.comparison.speedup


def _settings_threads(settings: Mapping[str, Any]) -> int | None:
    """Threads an ORT session with these settings computes on (None: unknown / more than one)."""
    intra = int(settings.get("intra_threads", 1))
    if settings.get("device", "cpu") != "cpu" or settings.get("mode", "sequential") != "sequential":
        return None
    return intra if intra >= 1 else None


def _session_kwargs(kw: Mapping[str, Any]) -> dict[str, Any]:
    return {k: kw[k] for k in SessionSettings.__annotations__ if k in kw}


def _check_settings(fn: str, settings: Mapping[str, Any]) -> None:
    """Reject keywords that are not :class:`SessionSettings` (as an explicit signature would)."""
    unknown = sorted(set(settings) - set(SessionSettings.__annotations__))
    if unknown:
        raise TypeError(f"{fn}() got an unexpected keyword argument {unknown[0]!r}")


def ort_variant(model: ModelLike, settings: Mapping[str, Any] | None = None, *,
                inputs: Mapping[str, Any] | None = None, seed: int = 0) -> Variant:
    """A :class:`Variant` running one fresh ORT session of ``model`` on fixed (seeded) inputs."""
    settings = dict(settings or {})
    sess = make_session(model, **_session_kwargs(settings))
    feed = dict(inputs) if inputs is not None else random_inputs(sess, seed=seed)
    return Variant(lambda: sess.run(None, feed), threads=_settings_threads(settings))


def measure_models(
    variants: Mapping[str, tuple[ModelLike, Mapping[str, Any]]],
    *,
    baseline: str | None = None,
    aa: bool = True,
    warmup: int = 5,
    rounds: int = 30,
    inputs: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    max_seconds: float | None = None,
    progress: bool = False,
) -> Measurement:
    """Time ORT variants ``{label: (model, settings)}`` with the measurement core.

    ``settings`` are :func:`make_session` keywords (``level``, ``intra_threads``, ``inter_threads``,
    ``mode``, ``device``). ``inputs`` optionally maps labels to feeds (default: seeded random inputs
    of each model). With ``aa`` the A/A control is a second session of the baseline (default: the
    first label). Returns the :class:`~xflow.runtime.measure.Measurement`.
    """
    if not variants:
        raise ValueError("measure_models: no variants")
    labels = list(variants)
    base = baseline if baseline is not None else labels[0]
    if base not in variants:
        raise KeyError(f"measure_models: baseline {base!r} is not a variant")
    order = labels + ([base + "~aa"] if aa else [])
    random.Random(seed).shuffle(order)
    built: dict[str, Variant] = {}
    for label in order:
        src = base if label == base + "~aa" else label
        model, settings = variants[src]
        built[label] = ort_variant(model, settings, inputs=(inputs or {}).get(src), seed=seed)
    vs = {label: built[label] for label in labels}
    return measure(vs, baseline=base, aa=built.get(base + "~aa", False) if aa else False,
                   warmup=warmup, rounds=rounds, seed=seed, max_seconds=max_seconds, progress=progress)


def session_pool(variants: Sequence[Variant]) -> Variant:
    """One :class:`Variant` over several sessions of one model: every sample runs the next session
    in turn (the ``before`` hook advances, untimed), so the samples, and with them the interval and
    the A/A floor, spread over what differs between sessions (memory placement, prepacked weights).
    Two ORT sessions of the same graph measured up to 10 % apart here (``costs.working_set_sessions``)."""
    vs = list(variants)
    if not vs:
        raise ValueError("session_pool: no sessions")
    if len(vs) == 1:
        return vs[0]
    at = [len(vs) - 1]

    def advance() -> None:
        at[0] = (at[0] + 1) % len(vs)
        if vs[at[0]].before is not None:
            vs[at[0]].before()

    return Variant(lambda: vs[at[0]].fn(), threads=vs[0].threads, before=advance, sync=vs[0].sync)


def measure_on_backend(
    models: Mapping[str, ModelLike],
    backend: str = "ort",
    *,
    baseline: str,
    threads: int = 1,
    level: str = "all",
    warmup: int = 5,
    rounds: int = 30,
    seed: int = 0,
    max_seconds: float | None = None,
    sessions: int = 1,
) -> Measurement:
    """Time ``{label: model}`` on one backend of :data:`xflow.runtime.backend.BACKENDS`, in
    interleaved rounds, with a second session of ``baseline`` as the A/A control.

    ``ort``: ONNX Runtime at optimization ``level`` with ``threads`` intra-op threads
    (:func:`measure_models`). ``torch`` / ``torch-cuda``: one generated-PyTorch session per model
    (:func:`~xflow.runtime.backend.make_backend_session`), all run on the baseline's seeded random
    inputs (the models must share their inputs, as rewrites of one graph do). With ``sessions`` > 1
    every label (and the A/A control) is a :func:`session_pool` of that many independent sessions.
    """
    if baseline not in models:
        raise KeyError(f"measure_on_backend: baseline {baseline!r} is not one of the models")
    if sessions < 1:
        raise ValueError(f"measure_on_backend: sessions must be >= 1, got {sessions}")
    if backend == "ort":
        settings = {"level": level, "intra_threads": threads}
        if sessions == 1:
            return measure_models({k: (m, settings) for k, m in models.items()}, baseline=baseline, warmup=warmup,
                                  rounds=rounds, seed=seed, max_seconds=max_seconds)
    feeds = random_inputs(models[baseline], seed=seed)

    def build(m: ModelLike) -> Variant:
        if backend == "ort":
            return ort_variant(m, settings, inputs=feeds, seed=seed)
        return make_backend_session(m, backend, threads=threads).variant(feeds)

    built = {k: session_pool([build(m) for _ in range(sessions)]) for k, m in models.items()}
    twin = session_pool([build(models[baseline]) for _ in range(sessions)])
    return measure(built, baseline=baseline, aa=twin, warmup=warmup, rounds=rounds, seed=seed,
                   max_seconds=max_seconds)


def measure_interleaved(
    variants: Mapping[str, tuple[ModelLike, Mapping[str, Any]]],
    *,
    warmup: int = 5,
    repeats: int = 30,
    inputs: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
) -> dict[str, LatencyStats]:
    """Per-variant :class:`LatencyStats` of :func:`measure_models` (no A/A control; descriptive)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    m = measure_models(variants, aa=False, warmup=warmup, rounds=repeats, inputs=inputs, seed=seed)
    return {label: stats_of(m, label) for label in variants}


def measure_latency(
    model: ModelLike,
    *,
    warmup: int = 5,
    repeats: int = 30,
    inputs: Mapping[str, Any] | None = None,
    seed: int = 0,
    **settings: Unpack[SessionSettings],
) -> LatencyStats:
    """Latency of one ``model`` in ORT with the given ``settings`` (:class:`SessionSettings`)."""
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
    min_effect: float = 0.0,
    **settings: Unpack[SessionSettings],
) -> LatencyComparison:
    """Measure ``a`` and ``b`` with the same ``settings`` in one run, ``b`` as the baseline (with an
    A/A control); ``.ratio`` = time_a / time_b with ``.ci`` and ``.verdict``."""
    _check_settings("compare_latency", settings)
    feeds = {"a": inputs, "b": inputs} if inputs is not None else None
    m = measure_models({"b": (b, settings), "a": (a, settings)}, baseline="b", warmup=warmup,
                       rounds=repeats, inputs=feeds, seed=seed)
    return LatencyComparison(stats_of(m, "a"), stats_of(m, "b"), m.compare("a", min_effect=min_effect), m)
