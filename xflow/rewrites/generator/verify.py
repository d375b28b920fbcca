r"""Verification of candidate substitutions: random testing at several shapes and dtypes, and z3.

A candidate passed the fingerprint test in modular arithmetic with stand-in activations; here it
must also hold with the real semantics:

1. **random testing** — both sides are built as ONNX models at each of several symbol
   instantiations (the fingerprint ones plus seeded random larger ones) and run in ONNX Runtime
   (float32, optimizations off) on the same seeded normal inputs; and both are evaluated in
   float64 with the numpy semantics of :mod:`~xflow.rewrites.generator.ops`. Outputs must agree
   within the dtype tolerances of :mod:`xflow.runtime.equivalence`
   (:math:`|a-b| \le \mathrm{atol}\cdot\max|b| + \mathrm{rtol}\cdot|b|`) and must not vanish
   (non-zero variance), so a test cannot pass on all-zero outputs;
2. **exact check with z3** — at one small instantiation every input element is a z3 ``Real``;
   both sides are evaluated symbolically (``Relu`` as ``If(x > 0, x, 0)``, ``MaxPool`` as nested
   ``If`` maxima, ``AveragePool`` as the exact mean, ``Sigmoid``/``Tanh`` as *uninterpreted*
   functions, so a proof holds for any activation) and z3 decides whether some input makes an
   output element differ. ``unsat`` = proved for all real inputs at that shape; ``sat`` =
   refuted (the rule is rejected); ``unknown`` (timeout) leaves the random tests as evidence.
   This is the shape-instantiated counterpart of TASO's ``verify/validate_axioms.py``; TASO proves
   rules from axioms that it validated this way.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from xflow.rewrites.generator.ops import OPS, dim_value, shape_value
from xflow.rewrites.generator.pattern import Pattern, is_var, random_values
from xflow.runtime import make_session
from xflow.runtime.equivalence import tolerances_for

__all__ = ["Evidence", "verify_candidate", "pattern_model", "random_envs", "smt_check"]

log = logging.getLogger(__name__)

OPSET = 17


@dataclass
class Evidence:
    """What verification established: per-test records, the z3 result and the verdict."""

    random_tests: list[dict[str, Any]] = field(default_factory=list)
    z3: dict[str, Any] = field(default_factory=dict)
    ok: bool = False
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """Plain-data form."""
        return {"verified": self.ok, "reason": self.reason, "random_tests": self.random_tests, "z3": self.z3}


def pattern_model(p: Pattern, env: dict[str, int], dtype: int = TensorProto.FLOAT) -> onnx.ModelProto:
    """The pattern as a runnable ONNX model at symbol sizes ``env`` (variables are graph inputs)."""
    shapes = p.shapes()
    inputs = [helper.make_tensor_value_info(v, dtype, list(shape_value(s, env))) for v, s in p.variables]
    nodes, inits = [], []
    name = lambda ref: ref if is_var(ref) else f"t{ref.replace(':', '_')}"  # noqa: E731
    for i, n in enumerate(p.nodes):
        spec = OPS[n.op]
        ins = [name(r) for r in n.inputs]
        outs = [name(f"{i}:{j}") for j in range(spec.n_out)]
        attrs = spec.onnx_attrs()
        if spec.kind == "split":
            ax, pos = spec.param
            d = shapes[n.inputs[0]][ax]
            sizes = np.array([dim_value(d[:pos], env), dim_value(d[pos:], env)], dtype=np.int64)
            inits.append(onnx.numpy_helper.from_array(sizes, f"split_sizes_{i}"))
            ins.append(f"split_sizes_{i}")
        nodes.append(helper.make_node(spec.op_type, ins, outs, name=f"n{i}", **attrs))
    outputs = []
    for k, r in enumerate(p.outputs):
        out_name = f"out{k}"
        nodes.append(helper.make_node("Identity", [name(r)], [out_name], name=f"id{k}"))
        outputs.append(helper.make_tensor_value_info(out_name, dtype, list(shape_value(shapes[r], env))))
    g = helper.make_graph(nodes, "pattern", inputs, outputs, initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
    m.ir_version = 8
    return m


def random_envs(symbols: list[str], base: list[dict[str, int]], n_random: int, seed: int) -> list[dict[str, int]]:
    """The fingerprint instantiations plus ``n_random`` seeded ones with sizes in 2..6."""
    rng = np.random.default_rng(seed)
    out = [dict(e) for e in base]
    for _ in range(n_random):
        out.append({s: int(rng.integers(2, 7)) for s in symbols})
    return out


def _close(a: np.ndarray, b: np.ndarray) -> tuple[bool, float]:
    if a.shape != b.shape:
        return False, float("inf")
    rtol, atol = tolerances_for(b.dtype)
    err = np.abs(a.astype(np.float64) - b.astype(np.float64))
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    ok = bool(np.all(err <= atol * scale + rtol * np.abs(b)))
    return ok, float(err.max()) if err.size else 0.0


def _run_ort(p: Pattern, env: dict[str, int], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    sess = make_session(pattern_model(p, env), level="disable", intra_threads=1)
    names = {i.name for i in sess.get_inputs()}
    return sess.run(None, {k: v for k, v in feeds.items() if k in names})


def random_test(src: Pattern, dst: Pattern, env: dict[str, int], *, dtype: str, seed: int) -> dict[str, Any]:
    """One random test of ``src ≡ dst`` at ``env`` in ``dtype`` (``float32`` in ORT, ``float64`` numpy)."""
    rng = np.random.default_rng(seed)
    np_dtype = np.float32 if dtype == "float32" else np.float64
    feeds = random_values(src, env, rng, np_dtype)
    if dtype == "float32":
        a, b = _run_ort(src, env, feeds), _run_ort(dst, env, feeds)
        engine = "onnxruntime"
    else:
        a, b = src.run(feeds, env, "float"), dst.run(feeds, env, "float")
        engine = "numpy"
    rec = {"env": env, "dtype": dtype, "engine": engine, "seed": seed, "ok": True, "max_abs_err": 0.0}
    for x, y in zip(a, b):
        ok, err = _close(np.asarray(x), np.asarray(y))
        rec["max_abs_err"] = max(rec["max_abs_err"], err)
        if not ok:
            rec["ok"] = False
        rec["output_std"] = float(np.std(np.asarray(y)))
    if rec["ok"] and all(np.max(np.abs(np.asarray(y)), initial=0.0) == 0 or
                         (np.asarray(y).size > 1 and np.std(np.asarray(y)) == 0) for y in b):
        rec["ok"] = False
        rec["why"] = "outputs vanish (zero variance): the test could not fail"
    return rec


def smt_check(src: Pattern, dst: Pattern, env: dict[str, int], timeout_ms: int = 5000) -> dict[str, Any]:
    """z3 decision of ``∃ inputs: src(inputs) ≠ dst(inputs)`` at ``env`` (see the module docstring)."""
    import z3

    t0 = time.perf_counter()
    funcs = {name: z3.Function(name, z3.RealSort(), z3.RealSort()) for name in ("Sigmoid", "Tanh")}
    values: dict[str, np.ndarray] = {}
    for v, s in src.variables:
        shp = shape_value(s, env)
        arr = np.empty(shp, dtype=object)
        for idx in np.ndindex(shp):
            arr[idx] = z3.Real(f"{v}_{'_'.join(map(str, idx))}")
        values[v] = arr
    a = src.run(values, env, "smt", funcs)
    b = dst.run(values, env, "smt", funcs)
    diffs = []
    for x, y in zip(a, b):
        x, y = np.asarray(x, dtype=object), np.asarray(y, dtype=object)
        if x.shape != y.shape:
            return {"result": "refuted", "env": env, "why": "output shapes differ", "time_s": 0.0}
        for p, q in zip(x.reshape(-1), y.reshape(-1)):
            p = p if z3.is_expr(p) else z3.RealVal(p)
            q = q if z3.is_expr(q) else z3.RealVal(q)
            d = z3.simplify(p - q, som=True, arith_lhs=True)
            if not (z3.is_rational_value(d) and d.as_fraction() == 0):
                diffs.append(p != q)
    if not diffs:
        return {"result": "proved", "env": env, "method": "simplify", "time_s": time.perf_counter() - t0}
    s = z3.Solver()
    s.set("timeout", timeout_ms)
    s.add(z3.Or(diffs))
    r = s.check()
    result = "proved" if r == z3.unsat else "refuted" if r == z3.sat else "unknown"
    return {"result": result, "env": env, "method": "solver", "time_s": time.perf_counter() - t0}


def verify_candidate(src: Pattern, dst: Pattern, base_envs: list[dict[str, int]], *, n_random: int = 2,
                     seed: int = 0, z3_env: dict[str, int] | None = None,
                     z3_timeout_ms: int = 5000) -> Evidence:
    """Random tests (float32 ORT + float64 numpy at every instantiation) and one z3 check."""
    ev = Evidence()
    symbols = sorted({s for _, shp in src.variables for d in shp if not isinstance(d, int) for s in d})
    envs = random_envs(symbols, [{k: e[k] for k in symbols} for e in base_envs], n_random, seed)
    for i, env in enumerate(envs):
        for dtype in ("float32", "float64"):
            try:
                rec = random_test(src, dst, env, dtype=dtype, seed=seed + i)
            except Exception as exc:  # noqa: BLE001 - a side that does not run fails the candidate
                rec = {"env": env, "dtype": dtype, "ok": False, "why": f"{type(exc).__name__}: {exc}"}
            ev.random_tests.append(rec)
            if not rec["ok"]:
                ev.reason = f"random test failed at {env} ({dtype}): {rec.get('why', 'outputs differ')}"
                return ev
    if z3_env is not None:
        try:
            ev.z3 = smt_check(src, dst, {k: z3_env[k] for k in symbols}, z3_timeout_ms)
        except Exception as exc:  # noqa: BLE001
            ev.z3 = {"result": "error", "why": f"{type(exc).__name__}: {exc}"}
        if ev.z3["result"] == "refuted":
            ev.reason = f"z3 found inputs on which the sides differ at {ev.z3['env']}"
            return ev
    ev.ok = True
    return ev
