r"""The generator's operator set: symbolic shapes, fingerprint semantics, float and z3 semantics, ONNX.

Each :class:`OpSpec` is one ONNX operator with fixed attributes (``Conv`` 3×3 "same", ``Concat``
axis 1, …) and knows how to

* infer its output shapes **symbolically** (:meth:`OpSpec.shapes`): a dimension is a tuple of
  symbol names whose sum it is (``("m",)``, ``("m", "n")`` for ``m + n`` after a Concat) or a
  literal ``int`` (kernel sizes); ``None`` when the op does not apply to these inputs;
* compute its outputs for **fingerprints** (:meth:`OpSpec.fingerprint`) in the integers modulo the
  prime :data:`PRIME` — exact ring arithmetic, so two graphs that are equal as polynomials get equal
  fingerprints whatever the evaluation order (TASO's generator uses wrapping ``int`` arithmetic for
  the same reason). Non-polynomial activations become fixed, distinct, non-linear polynomials
  (``Relu`` ↦ :math:`x(x+1)+1`, as in TASO), so a fingerprint match means "equal for *any*
  elementwise function", which is sound for the real one;
* compute its outputs in floating point (:meth:`OpSpec.evaluate`, numpy; the generic applier's
  constant folder) and as z3 terms (:meth:`OpSpec.smt`, exact verification);
* emit itself as ONNX (:meth:`OpSpec.onnx_attrs`).

Split is symbolic: it splits a dimension that is a sum at one of its boundaries (the sizes are the
two partial sums), the symbolic counterpart of TASO's ``SplitInfo`` (which only splits where a
Concat joined).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["PRIME", "Dim", "Shape", "OpSpec", "OPS", "get_op", "dim_value", "shape_value", "UNARY_POLY"]

#: Fingerprint modulus: products of two residues stay below 2**48, so int64 matmul/conv sums of up
#: to 2**15 terms never overflow.
PRIME = 16_777_213

Dim = "tuple[str, ...] | int"
Shape = "tuple[Dim, ...]"


def dim_value(d, env: dict[str, int]) -> int:
    """Concrete size of symbolic dimension ``d`` under symbol values ``env``."""
    return d if isinstance(d, int) else sum(env[s] for s in d)


def shape_value(shape, env: dict[str, int]) -> tuple[int, ...]:
    """Concrete shape of a symbolic shape under ``env``."""
    return tuple(dim_value(d, env) for d in shape)


def _same(a, b) -> bool:
    return a == b


# -- modular helpers ------------------------------------------------------------------------
def _mod(x: np.ndarray) -> np.ndarray:
    return np.mod(x, PRIME)


#: Stand-ins of non-polynomial activations in fingerprints (distinct, non-linear, TASO-style).
UNARY_POLY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Relu": lambda x: _mod(_mod(x * (x + 1)) + 1),
    "Sigmoid": lambda x: _mod(_mod(_mod(x * x) * x) + 3),
    "Tanh": lambda x: _mod(_mod(x * x) * 5 + 7 * x + 11),
}

_FLOAT_UNARY = {
    "Relu": lambda x: np.maximum(x, 0),
    "Sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "Tanh": np.tanh,
}


def _mod_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _mod(np.matmul(a, b))


def _windows(x: np.ndarray, kh: int, kw: int, pad_value) -> np.ndarray:
    """(N, C, H, W) -> (N, C, H, W, kh, kw) "same"-padded windows (stride 1)."""
    ph, pw = kh // 2, kw // 2
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    h, w = x.shape[2], x.shape[3]
    out = np.empty(x.shape + (kh, kw), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            out[..., i, j] = xp[:, :, i:i + h, j:j + w]
    return out


def _conv(x: np.ndarray, w: np.ndarray, modular: bool) -> np.ndarray:
    kh, kw = w.shape[2], w.shape[3]
    win = _windows(x, kh, kw, 0)
    out = np.einsum("nchwij,dcij->ndhw", win, w)
    return _mod(out) if modular else out


def _pool_counts(h: int, w: int, k: int) -> np.ndarray:
    ones = np.ones((1, 1, h, w), dtype=np.int64)
    return _windows(ones, k, k, 0).sum(axis=(-1, -2))[0, 0]


def _inv_mod(v: np.ndarray) -> np.ndarray:
    return np.vectorize(lambda a: pow(int(a), PRIME - 2, PRIME))(v).astype(np.int64)


@dataclass(frozen=True)
class OpSpec:
    """One operator with fixed attributes (see the module docstring).

    ``key`` is the spec's unique name (``"Concat_1"``), ``op_type`` the ONNX op, ``attrs`` its fixed
    ONNX attributes, ``arity`` inputs, ``n_out`` outputs, ``commutative`` whether inputs may swap.
    """

    key: str
    op_type: str
    arity: int
    attrs: tuple[tuple[str, Any], ...] = ()
    n_out: int = 1
    commutative: bool = False
    kind: str = ""                      # shape family, see shapes()
    param: Any = None                   # axis / kernel / perm
    weight_inputs: tuple[int, ...] = field(default=())   # inputs that TASO requires to be weights

    # -- shapes -----------------------------------------------------------------------------
    def shapes(self, ins: Sequence) -> list | None:
        """Symbolic output shapes for symbolic input shapes ``ins`` (None: not applicable)."""
        k = self.kind
        if k == "unary":
            return [ins[0]] if len(ins[0]) >= 1 else None
        if k == "ew":
            a, b = ins
            return [a] if a == b and len(a) >= 1 else None
        if k == "smul":
            a, s = ins
            return [a] if len(s) == 0 and len(a) >= 1 else None
        if k == "matmul":
            a, b = ins
            if len(a) != 2 or len(b) != 2 or not _same(a[1], b[0]):
                return None
            return [(a[0], b[1])]
        if k == "gemm_tb":  # A (m,k) · B(n,k)^T
            a, b = ins
            if len(a) != 2 or len(b) != 2 or not _same(a[1], b[1]):
                return None
            return [(a[0], b[0])]
        if k == "transpose":
            a = ins[0]
            if len(a) != len(self.param):
                return None
            return [tuple(a[p] for p in self.param)]
        if k == "concat":
            a, b = ins
            ax = self.param
            if len(a) != len(b) or len(a) <= ax:
                return None
            if any(a[i] != b[i] for i in range(len(a)) if i != ax):
                return None
            if isinstance(a[ax], int) or isinstance(b[ax], int):
                return None
            return [tuple(a[:ax]) + (a[ax] + b[ax],) + tuple(a[ax + 1:])]
        if k == "split":
            ax, pos = self.param
            a = ins[0]
            if len(a) <= ax or isinstance(a[ax], int) or len(a[ax]) <= pos or pos < 1:
                return None
            d = a[ax]
            return [tuple(a[:ax]) + (d[:pos],) + tuple(a[ax + 1:]),
                    tuple(a[:ax]) + (d[pos:],) + tuple(a[ax + 1:])]
        if k == "conv":
            x, w = ins
            kk = self.param
            if len(x) != 4 or len(w) != 4 or w[2] != kk or w[3] != kk or not _same(x[1], w[1]):
                return None
            if isinstance(w[0], int):
                return None
            return [(x[0], w[0], x[2], x[3])]
        if k == "pool":
            x = ins[0]
            if len(x) != 4 or isinstance(x[1], int):
                return None
            return [x]
        raise AssertionError(k)

    # -- fingerprint semantics (mod PRIME) ---------------------------------------------------
    def fingerprint(self, xs: Sequence[np.ndarray]) -> list[np.ndarray] | None:
        """Outputs in the integers mod :data:`PRIME` (int64 arrays)."""
        k = self.kind
        if k == "unary":
            return [UNARY_POLY[self.op_type](xs[0])]
        if k == "ew":
            return [_mod(xs[0] + xs[1]) if self.op_type == "Add" else _mod(xs[0] * xs[1])]
        if k == "smul":
            return [_mod(xs[0] * xs[1])]
        if k == "matmul":
            return [_mod_matmul(xs[0], xs[1])]
        if k == "gemm_tb":
            return [_mod_matmul(xs[0], xs[1].T)]
        return self._structural(xs, modular=True)

    # -- float semantics ---------------------------------------------------------------------
    def evaluate(self, xs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Outputs in floating point (numpy; used to fold constants in the generic applier)."""
        k = self.kind
        if k == "unary":
            return [_FLOAT_UNARY[self.op_type](xs[0]).astype(xs[0].dtype)]
        if k == "ew":
            return [xs[0] + xs[1] if self.op_type == "Add" else xs[0] * xs[1]]
        if k == "smul":
            return [xs[0] * xs[1]]
        if k == "matmul":
            return [xs[0] @ xs[1]]
        if k == "gemm_tb":
            return [xs[0] @ xs[1].T]
        return self._structural(xs, modular=False)

    def _structural(self, xs, *, modular: bool) -> list[np.ndarray]:
        k = self.kind
        if k == "transpose":
            return [np.ascontiguousarray(np.transpose(xs[0], self.param))]
        if k == "concat":
            return [np.concatenate([xs[0], xs[1]], axis=self.param)]
        if k == "split":
            raise AssertionError("split needs sizes: use split_sizes")
        if k == "conv":
            return [_conv(xs[0], xs[1], modular)]
        if k == "pool":
            x = xs[0]
            kk = self.param
            if self.op_type == "MaxPool":
                pad = -1 if modular else -np.inf
                return [_windows(x, kk, kk, pad).max(axis=(-1, -2)).astype(x.dtype)]
            s = _windows(x, kk, kk, 0).sum(axis=(-1, -2))
            cnt = _pool_counts(x.shape[2], x.shape[3], kk)
            if modular:
                return [_mod(_mod(s) * _inv_mod(cnt))]
            return [(s / cnt).astype(x.dtype)]
        raise AssertionError(k)

    def split_eval(self, x: np.ndarray, first: int) -> list[np.ndarray]:
        """Split ``x`` along this spec's axis into ``[:first]`` and ``[first:]``."""
        ax = self.param[0]
        return [np.take(x, range(first), axis=ax), np.take(x, range(first, x.shape[ax]), axis=ax)]

    # -- z3 semantics ------------------------------------------------------------------------
    def smt(self, xs: Sequence[np.ndarray], funcs: dict[str, Any]) -> list[np.ndarray]:
        """Outputs as object arrays of z3 terms (exact real arithmetic; Relu as ``If``)."""
        import z3

        k = self.kind
        if k == "unary":
            f = (lambda v: z3.If(v > 0, v, 0)) if self.op_type == "Relu" else funcs[self.op_type]
            x = xs[0]
            out = np.empty(x.shape, dtype=object)
            for idx in np.ndindex(x.shape):
                out[idx] = f(x[idx])
            return [out]
        if k == "ew":
            return [xs[0] + xs[1] if self.op_type == "Add" else xs[0] * xs[1]]
        if k == "smul":
            return [xs[0] * xs[1]]
        if k == "matmul":
            return [_obj_matmul(xs[0], xs[1])]
        if k == "gemm_tb":
            return [_obj_matmul(xs[0], xs[1].T)]
        if k == "transpose":
            return [np.transpose(xs[0], self.param)]
        if k == "concat":
            return [np.concatenate([xs[0], xs[1]], axis=self.param)]
        if k == "conv":
            x, w = xs
            kk = self.param
            win = _windows(x, kk, kk, z3.RealVal(0))
            n, _, h, wd = x.shape
            out = np.empty((n, w.shape[0], h, wd), dtype=object)
            for idx in np.ndindex(out.shape):
                b, d, i, j = idx
                out[idx] = z3.Sum([win[b, c, i, j, a, e] * w[d, c, a, e]
                                   for c in range(w.shape[1]) for a in range(kk) for e in range(kk)])
            return [out]
        if k == "pool":
            x = xs[0]
            kk = self.param
            n, c, h, wd = x.shape
            ph = kk // 2
            out = np.empty(x.shape, dtype=object)
            for idx in np.ndindex(x.shape):
                b, ch, i, j = idx
                vals = [x[b, ch, i + a - ph, j + e - ph] for a in range(kk) for e in range(kk)
                        if 0 <= i + a - ph < h and 0 <= j + e - ph < wd]
                if self.op_type == "MaxPool":
                    m = vals[0]
                    for v in vals[1:]:
                        m = z3.If(v > m, v, m)
                    out[idx] = m
                else:
                    out[idx] = z3.Sum(vals) / len(vals)
            return [out]
        raise AssertionError(k)

    # -- ONNX --------------------------------------------------------------------------------
    def onnx_attrs(self) -> dict[str, Any]:
        """ONNX attributes of this spec (Split sizes come from the input as a constant instead)."""
        return dict(self.attrs)

    def describe(self) -> str:
        """``Conv[k=3]``-style label."""
        return self.key


def _obj_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    import z3

    out = np.empty((a.shape[0], b.shape[1]), dtype=object)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            out[i, j] = z3.Sum([a[i, t] * b[t, j] for t in range(a.shape[1])])
    return out


def _specs() -> list[OpSpec]:
    out = [
        OpSpec("MatMul", "MatMul", 2, kind="matmul"),
        OpSpec("Gemm_tB", "Gemm", 2, attrs=(("transB", 1),), kind="gemm_tb"),
        OpSpec("Add", "Add", 2, commutative=True, kind="ew"),
        OpSpec("Mul", "Mul", 2, commutative=True, kind="ew"),
        OpSpec("ScalarMul", "Mul", 2, kind="smul"),
        OpSpec("Relu", "Relu", 1, kind="unary"),
        OpSpec("Sigmoid", "Sigmoid", 1, kind="unary"),
        OpSpec("Tanh", "Tanh", 1, kind="unary"),
        OpSpec("Transpose_10", "Transpose", 1, attrs=(("perm", (1, 0)),), kind="transpose", param=(1, 0)),
        OpSpec("Conv_3x3", "Conv", 2, attrs=(("kernel_shape", (3, 3)), ("pads", (1, 1, 1, 1)),
                                           ("strides", (1, 1))), kind="conv", param=3, weight_inputs=(1,)),
        OpSpec("Conv_1x1", "Conv", 2, attrs=(("kernel_shape", (1, 1)), ("pads", (0, 0, 0, 0)),
                                           ("strides", (1, 1))), kind="conv", param=1, weight_inputs=(1,)),
        OpSpec("MaxPool_3x3", "MaxPool", 1, attrs=(("kernel_shape", (3, 3)), ("pads", (1, 1, 1, 1)),
                                                 ("strides", (1, 1))), kind="pool", param=3),
        OpSpec("AveragePool_3x3", "AveragePool", 1, attrs=(("kernel_shape", (3, 3)), ("pads", (1, 1, 1, 1)),
                                                         ("strides", (1, 1))), kind="pool", param=3),
    ]
    for ax in (0, 1):
        out.append(OpSpec(f"Concat_{ax}", "Concat", 2, attrs=(("axis", ax),), kind="concat", param=ax))
    for ax in (0, 1):
        for pos in (1, 2):
            out.append(OpSpec(f"Split_{ax}_{pos}", "Split", 1, attrs=(("axis", ax),), n_out=2, kind="split",
                              param=(ax, pos)))
    return out


#: Every operator spec by key.
OPS: dict[str, OpSpec] = {s.key: s for s in _specs()}


def get_op(key: str) -> OpSpec:
    """The spec called ``key`` (KeyError with the known keys otherwise)."""
    try:
        return OPS[key]
    except KeyError:
        raise KeyError(f"unknown generator op {key!r}; known: {', '.join(OPS)}") from None


def numel(shape: tuple[int, ...]) -> int:
    """Elements of a concrete shape."""
    return math.prod(shape)
