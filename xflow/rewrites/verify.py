r"""Numeric verification of rewrites: does a rewritten model compute what the original does?

Both models run in ONNX Runtime with graph optimizations **disabled** on seeded random inputs
(:func:`xflow.runtime.random_inputs`). The original's outputs are computed once per
:class:`Verifier`, so checking many candidates of one graph costs one run each. Outputs are
compared by position with the dtype-aware tolerances of :mod:`xflow.runtime.equivalence`:

.. math::
    |a - b| \le \mathrm{atol}\cdot\max|b| + \mathrm{rtol}\cdot|b|
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from xflow.errors import RewriteVerificationError

__all__ = ["Verdict", "Verifier", "verify_rewrite", "is_equivalent"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """Outcome of one verification: ``ok``, the largest absolute error and why it failed."""

    ok: bool
    max_abs_err: float
    reason: str = ""


class Verifier:
    """Compares candidate models against one reference model on fixed random feeds.

    Args:
        reference: the original model.
        n_trials: number of random feeds (seeds ``seed, seed+1, …``).
        rtol, atol: override the dtype defaults of :data:`xflow.runtime.DEFAULT_TOLERANCES`.
    """

    def __init__(self, reference: onnx.ModelProto, *, n_trials: int = 1, seed: int = 0,
                 rtol: float | None = None, atol: float | None = None):
        from xflow.runtime import make_session, random_inputs

        self.rtol, self.atol = rtol, atol
        self.feeds = [random_inputs(reference, seed=seed + t) for t in range(n_trials)]
        sess = make_session(reference, level="disable", intra_threads=1)
        self.expected = [sess.run(None, f) for f in self.feeds]

    def check(self, model: onnx.ModelProto) -> Verdict:
        """Run ``model`` on the stored feeds and compare with the reference outputs."""
        from xflow.runtime import make_session
        from xflow.runtime.equivalence import tolerances_for

        try:
            sess = make_session(model, level="disable", intra_threads=1)
            inputs = {i.name for i in sess.get_inputs()}
            got = [sess.run(None, {k: v for k, v in f.items() if k in inputs}) for f in self.feeds]
        except Exception as exc:  # noqa: BLE001 - an invalid rewrite is a failed verification
            return Verdict(False, float("inf"), f"rewritten model does not run: {exc}")
        worst = 0.0
        for exp, out in zip(self.expected, got):
            if len(exp) != len(out):
                return Verdict(False, float("inf"), f"{len(out)} outputs instead of {len(exp)}")
            for i, (b, a) in enumerate(zip(exp, out)):
                a, b = np.asarray(a), np.asarray(b)
                if a.shape != b.shape or a.dtype != b.dtype:
                    return Verdict(False, float("inf"), f"output {i}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}")
                if b.size == 0:
                    continue
                d_rtol, d_atol = tolerances_for(b.dtype)
                rtol = d_rtol if self.rtol is None else self.rtol
                atol = d_atol if self.atol is None else self.atol
                a64, b64 = a.astype(np.float64), b.astype(np.float64)
                if not np.array_equal(np.isnan(a64), np.isnan(b64)):
                    return Verdict(False, float("nan"), f"output {i}: NaNs in different places")
                fin = ~np.isnan(b64)
                diff = np.abs(a64[fin] - b64[fin])
                err = float(diff.max()) if diff.size else 0.0
                worst = max(worst, err)
                scale = float(np.max(np.abs(b64[fin]))) if diff.size else 1.0
                scale = scale if scale > 0 and np.isfinite(scale) else 1.0
                if not np.all(diff <= atol * scale + rtol * np.abs(b64[fin])):
                    return Verdict(False, err, f"output {i}: max |a-b| = {err:.3g} (scale {scale:.3g})")
        return Verdict(True, worst)


def is_equivalent(original: onnx.ModelProto, rewritten: onnx.ModelProto, **kwargs: Any) -> Verdict:
    """One-shot :class:`Verdict` of ``rewritten`` against ``original``."""
    return Verifier(original, **kwargs).check(rewritten)


def verify_rewrite(original: onnx.ModelProto, rewritten: onnx.ModelProto, **kwargs: Any) -> float:
    """Return the max abs error, or raise :class:`~xflow.errors.RewriteVerificationError`."""
    v = is_equivalent(original, rewritten, **kwargs)
    if not v.ok:
        raise RewriteVerificationError(f"rewrite changed the model's outputs: {v.reason}")
    return v.max_abs_err
