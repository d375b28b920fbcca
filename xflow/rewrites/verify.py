r"""Numeric verification of rewrites: does a rewritten model compute what the original does?

Both models run in ONNX Runtime with graph optimizations **disabled** on seeded random inputs
(:func:`xflow.runtime.random_inputs`). :func:`verify_local` checks only the rewritten region: the
nodes that differ between the two graphs, cut out as two small models with the same boundary
inputs (random values) and outputs — exact for the algebraic identities the rules implement, and
cheap on large models; it falls back to the whole-model check when the region is not self-contained. The original's outputs are computed once per
:class:`Verifier`, so checking many candidates of one graph costs one run each. Outputs are
compared by position with the dtype-aware tolerances of :mod:`xflow.runtime.equivalence`:

.. math::
    |a - b| \le \mathrm{atol}\cdot\max|b| + \mathrm{rtol}\cdot|b|
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import onnx

from xflow.errors import RewriteVerificationError

__all__ = ["Verdict", "Verifier", "verify_rewrite", "is_equivalent", "verify_local"]

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


def _region(model: onnx.ModelProto, changed: set[int], nodes: list) -> tuple[list, set[str], set[str]]:
    """Nodes at ``changed`` indices, their boundary inputs and the outputs read outside / by the graph."""
    region = [nodes[i] for i in sorted(changed)]
    produced = {o for n in region for o in n.output if o}
    inputs = {t for n in region for t in n.input if t and t not in produced}
    outside_reads = {t for i, n in enumerate(nodes) if i not in changed for t in n.input}
    outs = {o for o in produced if o in outside_reads or o in {g.name for g in model.graph.output}}
    return region, inputs, outs


def _sub_model(model: onnx.ModelProto, region: list, inputs: list[str], outputs: list[str], view,
               shared: Callable[[str], onnx.TensorProto] | None = None) -> onnx.ModelProto | None:
    from onnx import helper

    from xflow.rewrites._graph import is_placeholder

    inits = {t.name: t for t in model.graph.initializer}
    g_inputs, g_inits = [], []
    for t in inputs:
        if t in inits:
            g_inits.append(shared(t) if shared is not None and is_placeholder(inits[t]) else inits[t])
        else:
            shp, et = view.shape(t), view.elem_type(t)
            if shp is None or et is None:
                return None
            g_inputs.append(helper.make_tensor_value_info(t, et, list(shp)))
    g_outputs = [helper.make_tensor_value_info(o, view.elem_type(o) or onnx.TensorProto.FLOAT, None)
                 for o in outputs]
    graph = helper.make_graph(region, "region", g_inputs, g_outputs, initializer=g_inits)
    m = helper.make_model(graph, opset_imports=list(model.opset_import))
    m.ir_version = model.ir_version
    return m


def verify_local(original: onnx.ModelProto, rewritten: onnx.ModelProto, *, seed: int = 0,
                 rtol: float | None = None, atol: float | None = None,
                 full: Callable[[], onnx.ModelProto] | None = None, view: Any = None,
                 tensor: Callable[[str], onnx.TensorProto] | None = None) -> Verdict:
    """Check only the region a rewrite changed (see module docstring); whole model as fallback.

    ``rewritten`` may be a :attr:`~xflow.rewrites._graph.Rewritten.structure` whose large weights
    are placeholders for ``original``'s tensors; then ``full`` must build the real model for the
    whole-model fallback and ``tensor(name)`` must return a placeholder's real TensorProto
    (default: ``original``'s initializer of that name). ``view``: a ready :class:`~xflow.rewrites._graph.GraphView` of
    ``original`` (saves re-running shape inference per candidate).
    """
    from xflow.rewrites._graph import GraphView, is_placeholder

    def key(n):
        return n.SerializeToString(deterministic=True)

    def whole() -> Verdict:
        target = rewritten
        if any(is_placeholder(t) for t in rewritten.graph.initializer):
            if full is None:
                raise ValueError("verify_local: rewritten model has placeholder weights; pass full=")
            target = full()
        return is_equivalent(original, target, seed=seed, rtol=rtol, atol=atol)

    a_nodes, b_nodes = list(original.graph.node), list(rewritten.graph.node)
    a_keys = {key(n) for n in a_nodes}
    b_keys = {key(n) for n in b_nodes}
    ca = {i for i, n in enumerate(a_nodes) if key(n) not in b_keys}
    cb = {i for i, n in enumerate(b_nodes) if key(n) not in a_keys}
    if not ca and not cb:
        return Verdict(True, 0.0)
    ra, ia, oa = _region(original, ca, a_nodes)
    rb, ib, ob = _region(rewritten, cb, b_nodes)
    orig_inits = {t.name: t for t in original.graph.initializer}
    new_inits = {t.name for t in rewritten.graph.initializer} - set(orig_inits)
    if oa != ob or not (ib - new_inits) <= (ia | set(orig_inits)):
        return whole()
    view = view if view is not None else GraphView.of(original)
    outs = sorted(oa)
    sub_a = _sub_model(original, ra, sorted(ia), outs, view)
    sub_b = _sub_model(rewritten, rb, sorted(ib), outs, view, shared=tensor or orig_inits.__getitem__)
    if sub_a is None or sub_b is None or any(
            vi.type.tensor_type.elem_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE,
                                                  onnx.TensorProto.FLOAT16) for vi in sub_a.graph.input):
        return whole()
    try:
        v = Verifier(sub_a, seed=seed, rtol=rtol, atol=atol)
    except Exception as exc:  # noqa: BLE001 - region not runnable alone: check the whole model
        log.debug("local verification fell back to the whole model: %s", exc)
        return whole()
    return v.check(sub_b)
