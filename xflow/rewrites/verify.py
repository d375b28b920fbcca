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
from xflow.graphs.ir import Graph, as_proto, attrs, ins, outs
from xflow.runtime import make_session, random_inputs
from xflow.runtime.equivalence import tolerances_for

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

    def __init__(self, reference: onnx.ModelProto | Graph, *, n_trials: int = 1, seed: int = 0,
                 rtol: float | None = None, atol: float | None = None):
        reference = as_proto(reference)
        self.rtol, self.atol = rtol, atol
        self.feeds = [random_inputs(reference, seed=seed + t) for t in range(n_trials)]
        sess = make_session(reference, level="disable", intra_threads=1)
        self.expected = [sess.run(None, f) for f in self.feeds]

    def check(self, model: onnx.ModelProto | Graph) -> Verdict:
        """Run ``model`` on the stored feeds and compare with the reference outputs."""
        try:
            sess = make_session(as_proto(model), level="disable", intra_threads=1)
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


def _node_key(n) -> tuple:
    return (n.op_type, n.domain, tuple(ins(n)), tuple(outs(n)), repr(sorted(
        (k, v.tobytes() if hasattr(v, "tobytes") else v) for k, v in attrs(n).items())))


def _changed(a: Graph, b: Graph) -> tuple[list, list]:
    """Nodes of ``a`` and of ``b`` that differ: from ``b.changes`` (plus kept nodes whose inputs
    were redirected) when ``b`` was edited from ``a``, else by comparing every node."""
    ch = b.changes
    if ch is not None and all(n in a.node_by_name for n in ch.removed):
        added = set(ch.added)
        ra, rb = [], []
        for n in b.nodes:
            if n.name in added:
                rb.append(n)
            elif n.name in a.node_by_name and ins(a.node(n.name)) != ins(n):
                rb.append(n)
                ra.append(a.node(n.name))
        ra += [a.node(n) for n in ch.removed]
        order = a.node_index
        return sorted(set(ra), key=lambda n: order[n.name]), rb
    a_keys = {_node_key(n) for n in a.nodes}
    b_keys = {_node_key(n) for n in b.nodes}
    return [n for n in a.nodes if _node_key(n) not in b_keys], [n for n in b.nodes if _node_key(n) not in a_keys]


def _boundary(g: Graph, region: list) -> tuple[list[str], list[str]]:
    """Tensors ``region`` reads from outside, and its outputs read outside it or by the graph."""
    names = {id(n) for n in region}
    produced = {o for n in region for o in outs(n) if o}
    inputs = sorted({t for n in region for t in ins(n) if t and t not in produced})
    outside = {t for n in g.nodes if id(n) not in names for t in ins(n)}
    return inputs, sorted(o for o in produced if o in outside or g.is_graph_output(o))


def _sub_model(g: Graph, region: list, inputs: list[str], outputs: list[str]) -> onnx.ModelProto | None:
    """``region`` of ``g`` as a model: boundary activations become typed inputs, weights stay."""
    import onnx_ir as ir
    from onnx import helper

    g_inputs, g_inits = [], []
    for t in inputs:
        v = g.value(t)
        if v is not None and v.const_value is not None:
            tp = ir.serde.serialize_tensor(v.const_value)
            tp.name = t
            g_inits.append(tp)
            continue
        shp, et = g.shape(t), g.elem_type(t)
        if shp is None or et is None:
            return None
        g_inputs.append(helper.make_tensor_value_info(t, et, list(shp)))
    g_outputs = [helper.make_tensor_value_info(o, g.elem_type(o) or onnx.TensorProto.FLOAT, None)
                 for o in outputs]
    graph = helper.make_graph([ir.serde.serialize_node(n) for n in region], "region", g_inputs, g_outputs,
                              initializer=g_inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in g.ir.opset_imports.items()])
    m.ir_version = g.ir.ir_version
    return m


def verify_local(original: onnx.ModelProto | Graph, rewritten: onnx.ModelProto | Graph, *, seed: int = 0,
                 rtol: float | None = None, atol: float | None = None) -> Verdict:
    """Check only the region a rewrite changed (see module docstring); whole model as fallback.

    When ``rewritten`` is a :class:`~xflow.graphs.Graph` edited from ``original``, its
    ``changes`` give the region directly; otherwise the nodes of both are compared.
    """
    a, b = Graph.of(original), Graph.of(rewritten)

    def whole() -> Verdict:
        return is_equivalent(a.model, b.model, seed=seed, rtol=rtol, atol=atol)

    ra, rb = _changed(a, b)
    if not ra and not rb:
        return Verdict(True, 0.0)
    ia, oa = _boundary(a, ra)
    ib, ob = _boundary(b, rb)
    new_consts = {t for t in ib if b.is_initializer(t) and not a.is_initializer(t)}
    if oa != ob or not (set(ib) - new_consts) <= (set(ia) | set(a.initializer_values)):
        return whole()
    sub_a = _sub_model(a, ra, ia, oa)
    sub_b = _sub_model(b, rb, ib, ob)
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
