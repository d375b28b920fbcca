r"""Numeric equivalence of two ONNX models on seeded random inputs.

Both models run in ONNX Runtime with graph optimizations **disabled** (so ORT's own rewrites cannot
hide or cause a difference) on the same random inputs, ``n_trials`` times with seeds
``seed, seed+1, …``. Outputs are compared position by position (a rewrite may rename them).
Output ``a`` matches reference ``b`` when, elementwise,

.. math::
    |a - b| \le \mathrm{atol}\cdot s + \mathrm{rtol}\cdot|b|,\qquad s = \max|b| \ (\text{or } 1 \text{ if } b = 0)

so ``atol`` is *relative to the output's magnitude*: summation-order changes (merged convs, fused
matmuls) produce errors proportional to the size of the values summed, and random-weight networks
produce outputs from ~1e-9 to ~1e3. Default tolerances depend on the dtype (:data:`DEFAULT_TOLERANCES`);
integer and bool outputs must match exactly. NaNs must appear in the same places.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

from xflow.errors import RewriteVerificationError
from xflow.runtime.backend import make_backend_session
from xflow.runtime.session import ModelLike, make_session, random_inputs

__all__ = ["DEFAULT_TOLERANCES", "OutputDiff", "CompareOptions", "compare_outputs", "compare_arrays",
           "outputs_close", "assert_equivalent", "tolerances_for"]

log = logging.getLogger(__name__)

DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-9, 1e-7),
    "float32": (1e-4, 1e-4),
    "float16": (1e-2, 1e-2),
    "bfloat16": (5e-2, 5e-2),
}
"""``dtype name -> (rtol, atol)``; other dtypes compare exactly."""


def tolerances_for(dtype: Any) -> tuple[float, float]:
    """Default ``(rtol, atol)`` of a numpy dtype (``(0, 0)`` for integers and bools)."""
    import numpy as np

    return DEFAULT_TOLERANCES.get(np.dtype(dtype).name, (0.0, 0.0))


class CompareOptions(TypedDict, total=False):
    """Keyword options of :func:`compare_outputs`, shared by :func:`outputs_close` and
    :func:`assert_equivalent` (defaults, and their meaning, are those of :func:`compare_outputs`)."""

    n_trials: int
    seed: int
    rtol: float | None
    atol: float | None
    inputs: Mapping[str, Any] | None
    device: str
    backend: str


@dataclass(frozen=True)
class OutputDiff:
    """Comparison of one output in one trial."""

    index: int
    name: str
    trial: int
    ok: bool
    max_abs_err: float
    reason: str = ""


def _diff(idx: int, name: str, trial: int, a: Any, b: Any, rtol: float | None, atol: float | None) -> OutputDiff:
    import numpy as np

    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return OutputDiff(idx, name, trial, False, float("inf"), f"shape {a.shape} vs {b.shape}")
    if a.dtype != b.dtype:
        return OutputDiff(idx, name, trial, False, float("inf"), f"dtype {a.dtype} vs {b.dtype}")
    d_rtol, d_atol = tolerances_for(b.dtype)
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    if a.size == 0:
        return OutputDiff(idx, name, trial, True, 0.0)
    if b.dtype.kind not in "fc":
        bad = int(np.count_nonzero(a != b))
        err = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if b.dtype.kind != "b" else float(bad)
        return OutputDiff(idx, name, trial, bad == 0, err, f"{bad} elements differ" if bad else "")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    nan_a, nan_b = np.isnan(a64), np.isnan(b64)
    if not np.array_equal(nan_a, nan_b):
        return OutputDiff(idx, name, trial, False, float("nan"), "NaNs in different places")
    fin = ~nan_b
    diff = np.abs(a64[fin] - b64[fin])
    err = float(diff.max()) if diff.size else 0.0
    scale = float(np.max(np.abs(b64[fin]))) if diff.size else 1.0
    scale = scale if scale > 0 and np.isfinite(scale) else 1.0
    ok = bool(np.all(diff <= atol * scale + rtol * np.abs(b64[fin])))
    reason = "" if ok else f"max |a-b| = {err:.3g} exceeds atol={atol:g}×{scale:.3g} + rtol={rtol:g}×|b|"
    return OutputDiff(idx, name, trial, ok, err, reason)


def compare_arrays(got: Any, ref: Any, names: Any, *, trial: int = 0, rtol: float | None = None,
                   atol: float | None = None) -> list[OutputDiff]:
    """Per-output comparison of arrays ``got`` against reference arrays ``ref`` (same rules and
    tolerances as :func:`compare_outputs`; for outputs a caller already has)."""
    return [_diff(i, n, trial, a, b, rtol, atol) for i, (n, a, b) in enumerate(zip(names, got, ref))]


def compare_outputs(
    a: ModelLike,
    b: ModelLike,
    *,
    n_trials: int = 2,
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
    inputs: Mapping[str, Any] | None = None,
    device: str = "cpu",
    backend: str = "ort",
) -> list[OutputDiff]:
    """Per-output, per-trial comparison of ``a`` against the reference ``b`` (see module docstring).

    ``inputs`` fixes one feed (then ``n_trials`` is ignored); by default random inputs are drawn from
    ``b``'s input signature. A different number of outputs yields one failing :class:`OutputDiff`.
    ``backend`` runs ``a`` on another backend of :mod:`xflow.runtime.backend` (``torch``,
    ``torch-cuda``); the reference always runs in ONNX Runtime.
    """
    sb = make_session(b, level="disable", intra_threads=0, device=device)
    if backend == "ort":
        sa = make_session(a, level="disable", intra_threads=0, device=device)
        names_a = [o.name for o in sa.get_outputs()]
        in_a = {i.name for i in sa.get_inputs()}

        def run_a(feed: Mapping[str, Any]) -> list[Any]:
            return sa.run(None, feed)
    else:
        ba = make_backend_session(a, backend, threads=0)
        names_a = [o.name for o in ba.outputs]
        in_a = {i.name for i in ba.inputs}
        run_a = ba.run
    names_b = [o.name for o in sb.get_outputs()]
    if len(names_a) != len(names_b):
        return [OutputDiff(-1, "*", 0, False, float("inf"),
                           f"{len(names_a)} outputs vs {len(names_b)} in the reference")]
    feeds = [dict(inputs)] if inputs is not None else [random_inputs(sb, seed=seed + t) for t in range(n_trials)]
    diffs: list[OutputDiff] = []
    for t, feed in enumerate(feeds):
        missing = in_a - set(feed)
        if missing:
            return [OutputDiff(-1, "*", t, False, float("inf"),
                               f"model needs input(s) {sorted(missing)} the reference does not have")]
        out_a = run_a({k: v for k, v in feed.items() if k in in_a})
        out_b = sb.run(None, feed)
        for i, (oa, ob) in enumerate(zip(out_a, out_b)):
            diffs.append(_diff(i, names_b[i], t, oa, ob, rtol, atol))
    return diffs


def outputs_close(a: ModelLike, b: ModelLike, **options: Unpack[CompareOptions]) -> tuple[bool, float]:
    """``(ok, max_abs_err)``: do ``a`` and reference ``b`` agree on seeded random inputs?
    ``options`` are those of :func:`compare_outputs`."""
    diffs = compare_outputs(a, b, **options)
    err = max((d.max_abs_err for d in diffs), default=0.0)
    return all(d.ok for d in diffs), err


def assert_equivalent(a: ModelLike, b: ModelLike, **options: Unpack[CompareOptions]) -> float:
    """Raise :class:`~xflow.errors.RewriteVerificationError` naming the first differing output;
    return the max abs error when ``a`` matches the reference ``b``. ``options`` are those of
    :func:`compare_outputs`."""
    diffs = compare_outputs(a, b, **options)
    for d in diffs:
        if not d.ok:
            raise RewriteVerificationError(
                f"models differ at output {d.index} ({d.name!r}), trial {d.trial}: {d.reason}"
            )
    return max((d.max_abs_err for d in diffs), default=0.0)
