"""ONNX operator → PyTorch source: one emitter per operator (the op coverage of the torch backend).

An emitter receives a :class:`Ctx` — the node (:class:`~xflow.runtime.backend_graph.OpView`), the
Python expressions of its inputs (a variable, ``self.<weight>`` or ``None`` for an omitted
optional input), the variable names of its outputs, static shapes/dtypes, constant input values,
the lowering options and what the lowering fused into it (``Conv`` + ``BatchNormalization`` +
activation + residual ``Add``) — and returns Python statements computing the outputs with
``torch`` / ``torch.nn.functional``. Emitted code is TorchScript-compatible (literal lists, typed
scalars) so that generated modules can be scripted, and is what both the generated module and the
per-operator profiler run.

Weights an emitter needs in another form (a BatchNorm folded into a convolution, a convolution
weight reordered for oneDNN, an array constant) are registered with :meth:`Ctx.derive`: the
generated module computes them once when it is built, from the ONNX initializers.

An operator without an emitter raises :class:`~xflow.errors.UnsupportedOperator` naming the node,
the operator and the supported set. To add an operator: write ``_emit_<op>(c: Ctx) -> str``,
register it in :data:`EMITTERS` and add a case to ``tests/runtime/test_backend_ops.py`` (checked
against ONNX Runtime on inputs whose outputs do not vanish).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xflow.errors import UnsupportedOperator
from xflow.runtime.backend_graph import OpView

__all__ = ["Ctx", "EmitOptions", "prefers_onednn", "conv_flops", "EMITTERS", "ALIAS_OPS", "ACTIVATIONS", "emit", "supported_ops",
           "torch_dtype", "activation_expr", "onednn_activation"]

#: Operators that only forward their input: compiled to a variable alias, never to a torch call.
ALIAS_OPS = frozenset({"Identity", "Dropout"})

@dataclass(frozen=True)
class EmitOptions:
    """How operators are lowered.

    Args:
        device: ``"cpu"`` or ``"cuda"`` (oneDNN calls only on the CPU).
        channels_last: 4-D activations live in channels-last memory (the lowering converts graph
            inputs once; torch keeps the format through convolutions and pooling).
        onednn: convolutions call oneDNN directly (``torch.ops.mkldnn._convolution_pointwise``)
            with prepacked weights and the activation / residual add fused in, instead of
            ``F.conv2d`` (whose heuristics send 1×1 and small convolutions to a slow
            im2col+GEMM kernel at one thread).
        onednn_min_flops: smaller convolutions keep ``F.conv2d``: a oneDNN call has ~60 µs of fixed
            cost on this CPU, more than a small convolution takes. A node's ``fused["impl"]``
            (``"onednn"`` / ``"native"`` / ``"nnpack"``, measured by :mod:`xflow.runtime.backend_tune`)
            overrides it.
        onednn_rule: choose per convolution with :func:`prefers_onednn` (shape rule) instead of
            the FLOP threshold alone.
        onednn_graph: the module will be frozen and run by torch's oneDNN Graph fuser: convolutions
            stay ``F.conv2d`` and residual adds / activations are emitted out of place (the fuser
            matches ``aten::conv2d`` → ``aten::add`` → ``aten::relu`` partitions, not in-place ops
            or direct oneDNN calls).
    """

    device: str = "cpu"
    channels_last: bool = False
    onednn: bool = False
    onednn_min_flops: float = 4e6
    onednn_rule: bool = False
    onednn_graph: bool = False


@dataclass
class Ctx:
    """Everything an emitter may look at for one node (see module docstring)."""

    node: OpView
    x: list[str | None]
    y: list[str]
    in_shapes: list[tuple[int, ...] | None]
    out_shapes: list[tuple[int, ...] | None]
    in_dtypes: list[Any]
    out_dtypes: list[Any]
    consts: dict[int, np.ndarray]
    opts: EmitOptions = field(default_factory=EmitOptions)
    opset: int = 17
    fused: dict[str, Any] = field(default_factory=dict)
    derive_fn: Callable[[list[str], str], list[str]] | None = None

    # -- convenience ------------------------------------------------------------------------
    @property
    def op(self) -> str:
        return self.node.op_type

    @property
    def name(self) -> str:
        return self.node.name

    def attr(self, key: str, default: Any = None) -> Any:
        return self.node.attrs.get(key, default)

    def const(self, i: int) -> np.ndarray | None:
        """Constant value of input ``i`` (``None`` if absent or not constant)."""
        if i >= len(self.x) or self.x[i] is None:
            return None
        return self.consts.get(i)

    def has(self, i: int) -> bool:
        """Whether optional input ``i`` is given."""
        return i < len(self.x) and self.x[i] is not None

    def out(self) -> str:
        """Left-hand side for the outputs (``a`` or ``a, b``)."""
        return self.y[0] if len(self.y) == 1 else ", ".join(self.y)

    def out_shape(self, i: int = 0) -> tuple[int, ...]:
        """Static shape of output ``i``; :class:`UnsupportedOperator` when it is not static."""
        shp = self.out_shapes[i] if i < len(self.out_shapes) else None
        if shp is None:
            raise self.unsupported("output shape is not static; export the model with fixed input "
                                   "shapes (no dynamic axes)")
        return tuple(shp)

    def in_shape(self, i: int = 0) -> tuple[int, ...]:
        shp = self.in_shapes[i] if i < len(self.in_shapes) else None
        if shp is None:
            raise self.unsupported(f"input {i} shape is not static")
        return tuple(shp)

    def derive(self, hints: list[str], expr: str) -> list[str]:
        """Register weights computed once at module build time by ``expr`` (one per hint)."""
        if self.derive_fn is None:
            raise RuntimeError("this emitter needs derived weights but the caller gave no derive_fn")
        return self.derive_fn(hints, expr)

    def unsupported(self, why: str) -> UnsupportedOperator:
        return UnsupportedOperator(f"{self.op} node {self.name!r}: {why}")


# ------------------------------------------------------------------------------ literals


def _lst(v: Any) -> str:
    return "[" + ", ".join(str(int(x)) for x in np.asarray(v).ravel()) + "]"


def _f(x: float) -> str:
    x = float(x)
    if math.isinf(x):
        return "float('inf')" if x > 0 else "float('-inf')"
    if math.isnan(x):
        return "float('nan')"
    return repr(x)


_TORCH_DTYPES = {
    "float32": "torch.float32", "float64": "torch.float64", "float16": "torch.float16",
    "int64": "torch.int64", "int32": "torch.int32", "int16": "torch.int16", "int8": "torch.int8",
    "uint8": "torch.uint8", "bool": "torch.bool",
}


def torch_dtype(dtype: Any) -> str:
    """``torch.<dtype>`` source for a numpy dtype."""
    name = np.dtype(dtype).name
    if name not in _TORCH_DTYPES:
        raise UnsupportedOperator(f"element type {name} is not supported by the torch backend")
    return _TORCH_DTYPES[name]


def _scalar(v: np.ndarray) -> str:
    """Python literal of a one-element constant (int or float by its dtype)."""
    x = np.asarray(v).ravel()[0]
    if np.asarray(v).dtype.kind in "iu":
        return str(int(x))
    if np.asarray(v).dtype.kind == "b":
        return "True" if bool(x) else "False"
    return _f(x)


def _norm_axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


# ------------------------------------------------------------------------------ activations


def _act_hardsigmoid(x: str, a: dict) -> str:
    alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
    return f"torch.clamp({x} * {_f(alpha)} + {_f(beta)}, 0.0, 1.0)"


def _clip_bounds(c: Ctx | None, attrs: dict, consts: dict[int, np.ndarray] | None = None) -> tuple:
    lo, hi = attrs.get("min"), attrs.get("max")
    if consts:
        if 1 in consts:
            lo = float(np.asarray(consts[1]).ravel()[0])
        if 2 in consts:
            hi = float(np.asarray(consts[2]).ravel()[0])
    return lo, hi


#: Unary activations: ``op -> fn(x_expr, attrs) -> expr`` (used standalone and after fusion).
ACTIVATIONS: dict[str, Callable[[str, dict], str]] = {
    "Relu": lambda x, a: f"torch.relu({x})",
    "Sigmoid": lambda x, a: f"torch.sigmoid({x})",
    "Tanh": lambda x, a: f"torch.tanh({x})",
    "LeakyRelu": lambda x, a: f"F.leaky_relu({x}, {_f(a.get('alpha', 0.01))})",
    "HardSigmoid": _act_hardsigmoid,
    "HardSwish": lambda x, a: f"F.hardswish({x})",
    "Elu": lambda x, a: f"F.elu({x}, {_f(a.get('alpha', 1.0))})",
    "Selu": lambda x, a: (f"F.selu({x})" if (abs(a.get("alpha", 1.67326319217681884765625) - 1.6732632) < 1e-6
                                            and abs(a.get("gamma", 1.05070102214813232421875) - 1.0507010) < 1e-6)
                          else f"{_f(a.get('gamma', 1.0507010))} * torch.where({x} > 0, {x}, "
                               f"{_f(a.get('alpha', 1.6732632))} * (torch.exp({x}) - 1.0))"),
    "Celu": lambda x, a: f"F.celu({x}, {_f(a.get('alpha', 1.0))})",
    "Softplus": lambda x, a: f"F.softplus({x})",
    "Softsign": lambda x, a: f"F.softsign({x})",
    "Mish": lambda x, a: f"F.mish({x})",
    "ThresholdedRelu": lambda x, a: f"torch.where({x} > {_f(a.get('alpha', 1.0))}, {x}, torch.zeros_like({x}))",
    "Gelu": lambda x, a: (f"F.gelu({x}, approximate='tanh')" if a.get("approximate", "none") == "tanh"
                          else f"F.gelu({x})"),
}


def activation_expr(op: str, attrs: dict, x: str, consts: dict[int, np.ndarray] | None = None) -> str:
    """Expression applying activation ``op`` (an :data:`ACTIVATIONS` key or ``Clip``) to ``x``."""
    if op == "Clip":
        lo, hi = _clip_bounds(None, attrs, consts)
        if lo == 0.0 and hi == 6.0:
            return f"F.relu6({x})"
        return f"torch.clamp({x}, {_f(lo) if lo is not None else 'None'}, {_f(hi) if hi is not None else 'None'})"
    return ACTIVATIONS[op](x, attrs)


def onednn_activation(op: str, attrs: dict, consts: dict[int, np.ndarray] | None = None) -> tuple[str, list[str], str] | None:
    """oneDNN post-op ``(attr, scalars, algorithm)`` equivalent to activation ``op``, if any."""
    if op == "Relu":
        return "relu", [], ""
    if op in ("Sigmoid", "Tanh", "HardSwish"):
        return op.lower(), [], ""
    if op == "LeakyRelu":
        return "leaky_relu", [_f(attrs.get("alpha", 0.01))], ""
    if op == "HardSigmoid" and abs(float(attrs.get("alpha", 0.2)) - 1 / 6) < 1e-7 \
            and abs(float(attrs.get("beta", 0.5)) - 0.5) < 1e-7:
        return "hardsigmoid", [], ""
    if op == "Gelu":
        return "gelu", [], "tanh" if attrs.get("approximate", "none") == "tanh" else "none"
    if op == "Clip":
        lo, hi = _clip_bounds(None, attrs, consts)
        if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
            return "hardtanh", [_f(lo), _f(hi)], ""
    return None


#: Activations the lowering may fuse into a preceding convolution (native path: any of these).
FUSIBLE_ACTIVATIONS = frozenset(ACTIVATIONS) | {"Clip"}


# ------------------------------------------------------------------------------ convolution


def _spatial_pads(c: Ctx, k: int, kernel: list[int], strides: list[int], dil: list[int]) -> tuple[list[int], list[int]]:
    """(begin, end) pads per spatial dim, resolving ``auto_pad`` from the static input shape."""
    ap = c.attr("auto_pad", "NOTSET")
    if ap in ("NOTSET", ""):
        pads = list(c.attr("pads", [0] * (2 * k)))
        return [int(p) for p in pads[:k]], [int(p) for p in pads[k:]]
    if ap == "VALID":
        return [0] * k, [0] * k
    if ap not in ("SAME_UPPER", "SAME_LOWER"):
        raise c.unsupported(f"auto_pad={ap!r} is not supported")
    shp = c.in_shape(0)[2:]
    begin, end = [], []
    for d in range(k):
        out = -(-shp[d] // strides[d])
        total = max((out - 1) * strides[d] + (kernel[d] - 1) * dil[d] + 1 - shp[d], 0)
        small = total // 2
        if ap == "SAME_UPPER":
            begin.append(small)
            end.append(total - small)
        else:
            begin.append(total - small)
            end.append(small)
    return begin, end


def _torch_pad(begin: list[int], end: list[int]) -> list[int]:
    """ONNX [b1..bk, e1..ek] → ``F.pad`` order (last dim first)."""
    out: list[int] = []
    for b, e in zip(reversed(begin), reversed(end)):
        out += [int(b), int(e)]
    return out


def conv_flops(c: Ctx) -> float:
    """Multiply-adds × 2 of the convolution in ``c`` (0 when a shape is unknown)."""
    o = c.out_shapes[0] if c.out_shapes else None
    w = c.in_shapes[1] if len(c.in_shapes) > 1 else None
    if o is None or w is None:
        return 0.0
    return 2.0 * float(np.prod(o)) * float(np.prod(w[1:]))


def prefers_onednn(c: Ctx) -> bool:
    """The shape rule of ``onednn="auto"``: does a 2-D convolution run faster through oneDNN
    (prepacked weights, fused post-ops) than through ``F.conv2d`` at one thread?

    A oneDNN call costs ~40-60 µs more than ``F.conv2d`` before any arithmetic (torch's
    ``_convolution_pointwise`` goes through primitive creation, a cache hit, on every call), while
    its brgemm kernels beat the im2col+GEMM path by 5-30 % on large spatial convolutions and by up
    to 1.6x when the output is tiny (GEMMs with M = H·W ≤ 16 rows) or strided. Fitted on the
    115 distinct convolutions of GoogLeNet, Inception-v3, SqueezeNet 1.1 and NASNet-like
    (``benchmarks/conv_kernels.py``, table ``runtime.conv_kernels``); ``onednn="tuned"`` measures
    instead and keeps this rule's choice unless another kernel is significantly faster:

    * grouped (depthwise) or strided convolutions: oneDNN;
    * otherwise below ``onednn_min_flops``: ``F.conv2d`` (fixed cost dominates);
    * 1×1: oneDNN only when the output has ≤ 9 pixels, or ≤ 16 pixels and ≥ 2·min FLOPs;
    * k×k: oneDNN from 30 MFLOP up, or when the output has ≤ 16 pixels.
    """
    w = c.in_shapes[1] if len(c.in_shapes) > 1 else None
    o = c.out_shapes[0] if c.out_shapes else None
    if w is None or o is None or len(w) != 4:
        return False
    strides = [int(s) for s in c.attr("strides", [1, 1])]
    if int(c.attr("group", 1)) > 1 or max(strides) > 1:
        return True
    flops, floor = conv_flops(c), c.opts.onednn_min_flops
    if flops < floor:
        return False
    pixels = int(np.prod(o[2:]))
    if tuple(w[2:]) == (1, 1):
        return pixels <= 9 or (pixels <= 16 and flops >= 2 * floor)
    return flops >= 30e6 or pixels <= 16


def _emit_conv(c: Ctx) -> str:
    w_shape = c.in_shapes[1] if len(c.in_shapes) > 1 else None
    kernel = list(c.attr("kernel_shape", w_shape[2:] if w_shape else []))
    k = len(kernel)
    if k not in (1, 2, 3):
        raise c.unsupported(f"{k}-D convolution is not supported")
    strides = [int(s) for s in c.attr("strides", [1] * k)]
    dil = [int(d) for d in c.attr("dilations", [1] * k)]
    group = int(c.attr("group", 1))
    begin, end = _spatial_pads(c, k, kernel, strides, dil)
    x = c.x[0]
    if begin != end:
        x = f"F.pad({x}, {_lst(_torch_pad(begin, end))})"
        begin = [0] * k
    w, b = c.x[1], (c.x[2] if c.has(2) else None)
    bn = c.fused.get("bn")
    if bn is not None:  # fold inference BatchNorm into the convolution, once, at build time
        w, b = c.derive([f"{c.y[0]}_wf", f"{c.y[0]}_bf"],
                        f"_fold_bn({w}, {b or 'None'}, {bn['scale']}, {bn['bias']}, {bn['mean']}, "
                        f"{bn['var']}, {_f(bn['eps'])})")
    act = c.fused.get("act")  # (op, attrs, consts)
    add = c.fused.get("add")  # expression of the residual operand
    w_const = c.const(1) is not None or c.fused.get("impl") is not None
    impl = c.fused.get("impl")  # a measured choice (backend_tune) overrides the FLOP threshold
    use_dnn = (c.opts.onednn and not c.opts.onednn_graph and c.opts.device == "cpu" and k == 2 and w_const
               and (c.in_dtypes[0] is None or np.dtype(c.in_dtypes[0]) == np.float32)
               and (impl == "onednn" if impl is not None
                    else prefers_onednn(c) if c.opts.onednn_rule else conv_flops(c) >= c.opts.onednn_min_flops))
    if impl == "nnpack":  # Winograd/FFT convolution of NNPACK (chosen by measurement only)
        expr = f"torch._nnpack_spatial_convolution({x}, {w}, {b or 'None'}, {_lst(begin)}, {_lst(strides)})"
        if add is not None:
            expr = f"{expr}.add_({add})"
        if act is not None:
            expr = activation_expr(act[0], act[1], expr, act[2])
            if act[0] == "Relu":
                expr = expr.replace("torch.relu(", "torch.relu_(", 1)
        if c.opts.channels_last:
            expr = f"{expr}.contiguous(memory_format=torch.channels_last)"
        return f"{c.out()} = {expr}"
    onednn_act = onednn_activation(act[0], act[1], act[2]) if act else ("none", [], "")
    if use_dnn and onednn_act is not None:
        in_shape = c.in_shape(0)
        (p,) = c.derive([f"{c.y[0]}_packed"],
                        f"_prepack_conv({w}, {_lst(begin)}, {_lst(strides)}, {_lst(dil)}, {group}, "
                        f"{_lst(in_shape)})")
        bias = b or "None"
        attr, scalars, alg = onednn_act
        if add is not None:
            unary = f"'{attr}'" if attr != "none" else "None"
            # the overload packet resolves to the ``binary`` schema by its arguments; the explicit
            # ``.binary`` attribute is not scriptable (the torchscript backend failed on it)
            return (f"{c.out()} = torch.ops.mkldnn._convolution_pointwise({x}, {add}, {p}, {bias}, "
                    f"{_lst(begin)}, {_lst(strides)}, {_lst(dil)}, {group}, 'add', None, {unary}, "
                    f"[{', '.join(scalars)}], {repr(alg) if alg else 'None'})")
        return (f"{c.out()} = torch.ops.mkldnn._convolution_pointwise({x}, {p}, {bias}, {_lst(begin)}, "
                f"{_lst(strides)}, {_lst(dil)}, {group}, '{attr}', [{', '.join(scalars)}], '{alg}')")
    if c.opts.channels_last and k == 2 and w_const:
        (w,) = c.derive([f"{c.y[0]}_wcl"], f"{w}.contiguous(memory_format=torch.channels_last)")
    expr = (f"F.conv{k}d({x}, {w}, {b or 'None'}, {_lst(strides)}, {_lst(begin)}, {_lst(dil)}, {group})")
    inplace = not c.opts.onednn_graph  # the conv output is ours; the graph fuser wants out-of-place ops
    if add is not None:
        expr = f"{expr}.add_({add})" if inplace else f"torch.add({expr}, {add})"
    if act is not None:
        expr = activation_expr(act[0], act[1], expr, act[2])
        if act[0] == "Relu" and inplace:
            expr = expr.replace("torch.relu(", "torch.relu_(", 1)
    return f"{c.out()} = {expr}"


def _emit_conv_transpose(c: Ctx) -> str:
    w_shape = c.in_shape(1)
    k = len(w_shape) - 2
    if k not in (1, 2, 3):
        raise c.unsupported(f"{k}-D transposed convolution is not supported")
    if c.attr("auto_pad", "NOTSET") not in ("NOTSET", "", "VALID") or c.attr("output_shape") is not None:
        raise c.unsupported("auto_pad / output_shape are not supported; re-export with explicit pads")
    strides = [int(s) for s in c.attr("strides", [1] * k)]
    dil = [int(d) for d in c.attr("dilations", [1] * k)]
    group = int(c.attr("group", 1))
    pads = [int(p) for p in c.attr("pads", [0] * (2 * k))]
    opad = [int(p) for p in c.attr("output_padding", [0] * k)]
    if pads[:k] != pads[k:]:
        raise c.unsupported("asymmetric pads are not supported")
    b = c.x[2] if c.has(2) else "None"
    return (f"{c.out()} = F.conv_transpose{k}d({c.x[0]}, {c.x[1]}, {b}, {_lst(strides)}, {_lst(pads[:k])}, "
            f"{_lst(opad)}, {group}, {_lst(dil)})")


# ------------------------------------------------------------------------------ pooling


def _emit_pool(c: Ctx, kind: str) -> str:
    ks = [int(v) for v in c.attr("kernel_shape")]
    k = len(ks)
    if k not in (1, 2, 3):
        raise c.unsupported(f"{k}-D pooling is not supported")
    strides = [int(s) for s in c.attr("strides", [1] * k)]
    dil = [int(d) for d in c.attr("dilations", [1] * k)]
    begin, end = _spatial_pads(c, k, ks, strides, dil)
    ceil = bool(c.attr("ceil_mode", 0))
    x = c.x[0]
    if len(c.y) > 1 and c.y[1] != "_unused":
        raise c.unsupported("the Indices output is not supported")
    cip = bool(c.attr("count_include_pad", 0))
    if begin != end or any(2 * b > kk for b, kk in zip(begin, ks)):
        if kind == "avg" and not cip and any(begin + end):
            raise c.unsupported("asymmetric padding without count_include_pad is not supported")
        fill = "float('-inf')" if kind == "max" else "0.0"
        x = f"F.pad({x}, {_lst(_torch_pad(begin, end))}, 'constant', {fill})"
        begin = [0] * k
    if kind == "max":
        return (f"{c.y[0]} = F.max_pool{k}d({x}, {_lst(ks)}, {_lst(strides)}, {_lst(begin)}, "
                f"{_lst(dil)}, {ceil})")
    if any(d != 1 for d in dil):
        raise c.unsupported("dilated average pooling is not supported")
    return f"{c.y[0]} = F.avg_pool{k}d({x}, {_lst(ks)}, {_lst(strides)}, {_lst(begin)}, {ceil}, {cip})"


def _emit_global_pool(c: Ctx, kind: str) -> str:
    rank = len(c.in_shape(0))
    dims = _lst(range(2, rank))
    if kind == "avg":
        return f"{c.out()} = torch.mean({c.x[0]}, {dims}, True)"
    return f"{c.out()} = torch.amax({c.x[0]}, {dims}, True)"


def _emit_lrn(c: Ctx) -> str:
    size = int(c.attr("size"))
    alpha, beta, bias = float(c.attr("alpha", 1e-4)), float(c.attr("beta", 0.75)), float(c.attr("bias", 1.0))
    if size % 2 == 1:  # torch pads size//2 in front and (size-1)//2 behind: same as ONNX for odd sizes
        return f"{c.out()} = F.local_response_norm({c.x[0]}, {size}, {_f(alpha)}, {_f(beta)}, {_f(bias)})"
    return f"{c.out()} = _lrn({c.x[0]}, {size}, {_f(alpha)}, {_f(beta)}, {_f(bias)})"


# ------------------------------------------------------------------------------ elementwise


def _operand(c: Ctx, i: int, other: int) -> str:
    """Input ``i`` as a Python literal when it is a one-element constant that does not change the
    broadcast shape (saves a tensor read), else its expression."""
    v = c.const(i)
    if v is not None and np.asarray(v).size == 1 and c.in_shapes[other] is not None \
            and c.out_shapes and c.out_shapes[0] is not None \
            and tuple(c.in_shapes[other]) == tuple(c.out_shapes[0]) \
            and c.in_dtypes[other] is not None and np.dtype(c.in_dtypes[other]).kind == np.asarray(v).dtype.kind:
        return _scalar(v)
    return c.x[i]


def _binary(sym: str) -> Callable[[Ctx], str]:
    def emit_(c: Ctx) -> str:
        a, b = _operand(c, 0, 1), _operand(c, 1, 0)
        if a == c.x[0] or b == c.x[1]:
            return f"{c.out()} = {a} {sym} {b}"
        return f"{c.out()} = {c.x[0]} {sym} {c.x[1]}"
    return emit_


def _emit_div(c: Ctx) -> str:
    dt = c.out_dtypes[0] if c.out_dtypes else None
    if dt is not None and np.dtype(dt).kind in "iu":
        return f"{c.out()} = torch.div({c.x[0]}, {c.x[1]}, rounding_mode='trunc')"
    return _binary("/")(c)


def _emit_pow(c: Ctx) -> str:
    e = c.const(1)
    if e is not None and e.size == 1:
        v = float(e.ravel()[0])
        if v == 2.0:
            return f"{c.out()} = {c.x[0]} * {c.x[0]}"
        if v == 0.5:
            return f"{c.out()} = torch.sqrt({c.x[0]})"
        return f"{c.out()} = torch.pow({c.x[0]}, {_f(v)})"
    return f"{c.out()} = torch.pow({c.x[0]}, {c.x[1]})"


def _variadic(fn: str) -> Callable[[Ctx], str]:
    def emit_(c: Ctx) -> str:
        xs = [x for x in c.x if x]
        if len(xs) == 1:
            return f"{c.out()} = {xs[0]}"
        expr = xs[0]
        for x in xs[1:]:
            expr = f"{fn}({expr}, {x})" if fn.startswith("torch.") else f"({expr} {fn} {x})"
        return f"{c.out()} = {expr}"
    return emit_


def _emit_mean(c: Ctx) -> str:
    xs = [x for x in c.x if x]
    return f"{c.out()} = ({' + '.join(xs)}) / {float(len(xs))}"


def _cmp(fn: str) -> Callable[[Ctx], str]:
    return lambda c: f"{c.out()} = {fn}({c.x[0]}, {c.x[1]})"


def _unary(fn: str) -> Callable[[Ctx], str]:
    return lambda c: f"{c.out()} = {fn}({c.x[0]})"


def _emit_activation(c: Ctx) -> str:
    return f"{c.out()} = {activation_expr(c.op, dict(c.node.attrs), c.x[0], c.consts)}"


def _emit_clip(c: Ctx) -> str:
    for i in (1, 2):
        if c.has(i) and c.const(i) is None:
            return (f"{c.out()} = torch.clamp({c.x[0]}, {c.x[1] if c.has(1) else 'None'}, "
                    f"{c.x[2] if c.has(2) else 'None'})")
    return f"{c.out()} = {activation_expr('Clip', dict(c.node.attrs), c.x[0], c.consts)}"


def _emit_prelu(c: Ctx) -> str:
    return f"{c.out()} = torch.where({c.x[0]} >= 0, {c.x[0]}, {c.x[0]} * {c.x[1]})"


def _emit_mod(c: Ctx) -> str:
    if int(c.attr("fmod", 0)):
        return f"{c.out()} = torch.fmod({c.x[0]}, {c.x[1]})"
    return f"{c.out()} = torch.remainder({c.x[0]}, {c.x[1]})"


def _emit_cast(c: Ctx) -> str:
    dt = c.out_dtypes[0]
    if dt is None:
        from onnx import helper

        dt = helper.tensor_dtype_to_np_dtype(int(c.attr("to")))
    return f"{c.out()} = {c.x[0]}.to({torch_dtype(dt)})"


def _emit_cast_like(c: Ctx) -> str:
    return f"{c.out()} = {c.x[0]}.to({c.x[1]}.dtype)"


def _emit_where(c: Ctx) -> str:
    return f"{c.out()} = torch.where({c.x[0]}, {c.x[1]}, {c.x[2]})"


# ------------------------------------------------------------------------------ linear algebra


def _emit_gemm(c: Ctx) -> str:
    a, b = c.x[0], c.x[1]
    cc = c.x[2] if c.has(2) else None
    alpha, beta = float(c.attr("alpha", 1.0)), float(c.attr("beta", 1.0))
    ta, tb = int(c.attr("transA", 0)), int(c.attr("transB", 0))
    if not ta and tb and alpha == 1.0 and beta == 1.0:
        return f"{c.out()} = F.linear({a}, {b}, {cc or 'None'})"
    if ta:
        a = f"{a}.t()"
    if not tb:
        b = f"{b}.t()"  # F.linear wants (out, in)
    expr = f"F.linear({a}, {b})"
    if alpha != 1.0:
        expr = f"{_f(alpha)} * {expr}"
    if cc:
        expr += f" + {_f(beta)} * {cc}" if beta != 1.0 else f" + {cc}"
    return f"{c.out()} = {expr}"


def _emit_matmul(c: Ctx) -> str:
    return f"{c.out()} = torch.matmul({c.x[0]}, {c.x[1]})"


def _emit_einsum(c: Ctx) -> str:
    eq = c.attr("equation").replace(" ", "")
    return f"{c.out()} = torch.einsum({eq!r}, [{', '.join(x for x in c.x if x)}])"


# ------------------------------------------------------------------------------ normalization


def _emit_bn(c: Ctx) -> str:
    if int(c.attr("training_mode", 0)) or len([y for y in c.y if y != "_unused"]) > 1:
        raise c.unsupported("training-mode BatchNormalization is not supported (inference only)")
    eps = _f(c.attr("epsilon", 1e-5))
    x, s, b, m, v = c.x[:5]
    return f"{c.y[0]} = F.batch_norm({x}, {m}, {v}, {s}, {b}, False, 0.0, {eps})"


def _emit_layer_norm(c: Ctx) -> str:
    if any(y != "_unused" for y in c.y[1:]):
        raise c.unsupported("the Mean / InvStdDev outputs are not supported")
    shp = c.in_shape(0)
    axis = _norm_axis(int(c.attr("axis", -1)), len(shp))
    norm = list(shp[axis:])
    eps = _f(c.attr("epsilon", 1e-5))
    scale = c.x[1]
    bias = c.x[2] if c.has(2) else "None"
    sshape = c.in_shapes[1]
    if sshape is not None and list(sshape) != norm:
        scale = f"{scale}.expand({_lst(norm)})"
        if c.has(2):
            bias = f"{bias}.expand({_lst(norm)})"
    return f"{c.y[0]} = F.layer_norm({c.x[0]}, {_lst(norm)}, {scale}, {bias}, {eps})"


def _emit_instance_norm(c: Ctx) -> str:
    eps = _f(c.attr("epsilon", 1e-5))
    return f"{c.out()} = F.instance_norm({c.x[0]}, None, None, {c.x[1]}, {c.x[2]}, True, 0.0, {eps})"


def _softmax_like(fn: str) -> Callable[[Ctx], str]:
    def emit_(c: Ctx) -> str:
        shp = c.in_shape(0)
        axis = _norm_axis(int(c.attr("axis", -1 if c.opset >= 13 else 1)), len(shp))
        if c.opset >= 13 or axis == len(shp) - 1:
            return f"{c.out()} = {fn}({c.x[0]}, {axis})"
        flat = [int(np.prod(shp[:axis], dtype=np.int64)), int(np.prod(shp[axis:], dtype=np.int64))]
        return f"{c.out()} = {fn}({c.x[0]}.reshape({_lst(flat)}), 1).reshape({_lst(shp)})"
    return emit_


# ------------------------------------------------------------------------------ shape ops


def _emit_reshape_static(c: Ctx) -> str:
    return f"{c.out()} = {c.x[0]}.reshape({_lst(c.out_shape())})"


def _emit_transpose(c: Ctx) -> str:
    perm = c.attr("perm")
    if perm is None:
        perm = list(reversed(range(len(c.in_shape(0)))))
    return f"{c.out()} = {c.x[0]}.permute({_lst(perm)})"


def _emit_concat(c: Ctx) -> str:
    xs = [x for x, s in zip(c.x, c.in_shapes) if x and (s is None or 0 not in s)]
    rank = len(c.out_shape())
    return f"{c.out()} = torch.cat([{', '.join(xs)}], {_norm_axis(int(c.attr('axis')), rank)})"


def _emit_split(c: Ctx) -> str:
    rank = len(c.in_shape(0))
    axis = _norm_axis(int(c.attr("axis", 0)), rank)
    split = c.const(1)
    if split is None:
        split = c.attr("split")
    if split is None:
        split = [c.out_shape(i)[axis] for i in range(len(c.y))]
    parts = "; ".join(f"{o} = _sp[{k}]" for k, o in enumerate(c.y) if o != "_unused")
    return f"_sp = torch.split({c.x[0]}, {_lst(split)}, {axis}); {parts}"


def _axes(c: Ctx, input_index: int, attr: str = "axes") -> list[int] | None:
    v = c.const(input_index) if c.has(input_index) else None
    if v is None:
        v = c.attr(attr)
    if v is None:
        if c.has(input_index):
            raise c.unsupported(f"non-constant {attr} are not supported")
        return None
    return [int(a) for a in np.asarray(v).ravel()]


def _emit_slice(c: Ctx) -> str:
    shp = c.in_shape(0)
    rank = len(shp)
    if c.opset < 10:
        starts, ends = list(c.attr("starts")), list(c.attr("ends"))
        axes = c.attr("axes", list(range(len(starts))))
        steps = [1] * len(starts)
    else:
        vals = []
        for i in (1, 2):
            v = c.const(i)
            if v is None:
                raise c.unsupported("non-constant starts/ends are not supported")
            vals.append([int(x) for x in v.ravel()])
        starts, ends = vals
        axes = _axes(c, 3) or list(range(len(starts)))
        steps = [int(s) for s in c.const(4).ravel()] if c.has(4) and c.const(4) is not None else [1] * len(starts)
        if c.has(4) and c.const(4) is None:
            raise c.unsupported("non-constant steps are not supported")
    idx = [":"] * rank
    flips: list[int] = []
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = _norm_axis(int(a), rank)
        d = shp[a]
        if st > 0:
            s = max(0, min(d, s + d if s < 0 else s))
            e = max(0, min(d, e + d if e < 0 else e))
            idx[a] = f"{s}:{e}" + (f":{st}" if st != 1 else "")
        else:  # negative step: flip, then slice forward
            s = max(0, min(d - 1, s + d if s < 0 else s))
            e = max(-1, min(d - 1, e + d if e < 0 else e))
            flips.append(a)
            fs, fe = d - 1 - s, d - 1 - e
            idx[a] = f"{fs}:{max(fs, fe)}" + (f":{-st}" if st != -1 else "")
    x = c.x[0]
    if flips:
        x = f"torch.flip({x}, {_lst(flips)})"
    return f"{c.out()} = {x}[{', '.join(idx)}]"


def _emit_gather(c: Ctx) -> str:
    shp = c.in_shape(0)
    axis = _norm_axis(int(c.attr("axis", 0)), len(shp))
    idx = c.const(1)
    if idx is not None:
        idx = np.where(idx < 0, idx + shp[axis], idx).astype(np.int64)
        if idx.ndim == 0:
            return f"{c.out()} = {c.x[0]}.select({axis}, {int(idx)})"
        if idx.size <= 64:
            body = f"torch.index_select({c.x[0]}, {axis}, torch.tensor({_lst(idx)}, dtype=torch.int64, device={c.x[0]}.device))"
        else:
            (t,) = c.derive([f"{c.y[0]}_idx"], f"torch.tensor({_lst(idx)}, dtype=torch.int64)")
            body = f"torch.index_select({c.x[0]}, {axis}, {t})"
        if idx.ndim == 1:
            return f"{c.out()} = {body}"
        return f"{c.out()} = {body}.reshape({_lst(c.out_shape())})"
    ishape = c.in_shape(1)
    flat = f"{c.x[1]}.reshape([-1])"
    norm = f"torch.where({flat} < 0, {flat} + {shp[axis]}, {flat})"
    body = f"torch.index_select({c.x[0]}, {axis}, {norm})"
    if len(ishape) == 1:
        return f"{c.out()} = {body}"
    return f"{c.out()} = {body}.reshape({_lst(c.out_shape())})"


def _emit_gather_elements(c: Ctx) -> str:
    axis = _norm_axis(int(c.attr("axis", 0)), len(c.in_shape(0)))
    d = c.in_shape(0)[axis]
    return f"{c.out()} = torch.gather({c.x[0]}, {axis}, torch.where({c.x[1]} < 0, {c.x[1]} + {d}, {c.x[1]}))"


def _emit_expand(c: Ctx) -> str:
    return f"{c.out()} = {c.x[0]}.expand({_lst(c.out_shape())})"


def _emit_tile(c: Ctx) -> str:
    reps = c.const(1)
    if reps is None:
        raise c.unsupported("non-constant repeats are not supported")
    return f"{c.out()} = {c.x[0]}.repeat({_lst(reps)})"


def _emit_squeeze_like(c: Ctx) -> str:
    return f"{c.out()} = {c.x[0]}.reshape({_lst(c.out_shape())})"


def _emit_pad(c: Ctx) -> str:
    mode = c.attr("mode", "constant")
    pads = c.const(1) if c.opset >= 11 else None
    if pads is None:
        pads = c.attr("pads")
    if pads is None:
        raise c.unsupported("non-constant pads are not supported")
    pads = [int(p) for p in np.asarray(pads).ravel()]
    rank = len(c.in_shape(0))
    axes = _axes(c, 3) if c.opset >= 18 else None
    if axes is not None:  # expand to all dims
        full = [0] * (2 * rank)
        for j, a in enumerate(axes):
            a = _norm_axis(a, rank)
            full[a], full[rank + a] = pads[j], pads[len(axes) + j]
        pads = full
    k = len(pads) // 2
    tp = _torch_pad(pads[:k], pads[k:])
    while len(tp) > 2 and tp[-1] == 0 and tp[-2] == 0:
        tp = tp[:-2]  # torch pads trailing dims: drop leading zero pairs
    val = 0.0
    cv = c.const(2) if c.opset >= 11 else None
    if cv is not None and cv.size:
        val = float(cv.ravel()[0])
    elif c.opset < 11 and "value" in c.node.attrs:
        val = float(c.attr("value"))
    elif c.opset >= 11 and c.has(2) and cv is None:
        raise c.unsupported("non-constant pad value is not supported")
    tmode = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}.get(mode)
    if tmode is None:
        raise c.unsupported(f"mode {mode!r} is not supported")
    if tmode == "constant":
        if any(p < 0 for p in tp):  # negative pads crop
            return f"{c.out()} = F.pad({c.x[0]}, {_lst(tp)})"
        return f"{c.out()} = F.pad({c.x[0]}, {_lst(tp)}, 'constant', {_f(val)})"
    return f"{c.out()} = F.pad({c.x[0]}, {_lst(tp)}, '{tmode}')"


def _emit_shape(c: Ctx) -> str:
    shp = c.in_shape(0)
    start, end = int(c.attr("start", 0)), c.attr("end")
    vals = list(shp)[start:(None if end is None else int(end))]
    return f"{c.out()} = torch.tensor({_lst(vals)}, dtype=torch.int64)"


def _emit_size(c: Ctx) -> str:
    return f"{c.out()} = torch.tensor({int(np.prod(c.in_shape(0), dtype=np.int64))}, dtype=torch.int64)"


def _emit_constant_of_shape(c: Ctx) -> str:
    v = c.attr("value")
    v = np.asarray(v) if v is not None else np.zeros(1, np.float32)
    return f"{c.out()} = torch.full({_lst(c.out_shape())}, {_scalar(v)}, dtype={torch_dtype(v.dtype)})"


def _emit_range(c: Ctx) -> str:
    dt = c.out_dtypes[0] or np.float32
    return (f"{c.out()} = torch.arange({c.x[0]}.item(), {c.x[1]}.item(), {c.x[2]}.item(), "
            f"dtype={torch_dtype(dt)})")


def _emit_constant(c: Ctx) -> str:
    v = c.attr("value")
    if v is None:
        for key in ("value_float", "value_int"):
            if c.attr(key) is not None:
                v = np.asarray(c.attr(key), np.float32 if key == "value_float" else np.int64)
        for key in ("value_floats", "value_ints"):
            if c.attr(key) is not None:
                v = np.asarray(c.attr(key), np.float32 if key == "value_floats" else np.int64)
    if v is None:
        raise c.unsupported("only value / value_float(s) / value_int(s) constants are supported")
    v = np.asarray(v)
    (t,) = c.derive([f"{c.y[0]}_const"],
                    f"torch.tensor({v.ravel().tolist()!r}, dtype={torch_dtype(v.dtype)}).reshape({_lst(v.shape)})")
    return f"{c.out()} = {t}"


def _emit_depth_to_space(c: Ctx) -> str:
    b = int(c.attr("blocksize"))
    n, ch, h, w = c.in_shape(0)
    if c.attr("mode", "DCR") == "CRD":
        return f"{c.out()} = F.pixel_shuffle({c.x[0]}, {b})"
    return (f"{c.out()} = {c.x[0]}.reshape([{n}, {b}, {b}, {ch // (b * b)}, {h}, {w}])"
            f".permute([0, 3, 4, 1, 5, 2]).reshape([{n}, {ch // (b * b)}, {h * b}, {w * b}])")


def _emit_space_to_depth(c: Ctx) -> str:
    b = int(c.attr("blocksize"))
    n, ch, h, w = c.in_shape(0)
    return (f"{c.out()} = {c.x[0]}.reshape([{n}, {ch}, {h // b}, {b}, {w // b}, {b}])"
            f".permute([0, 3, 5, 1, 2, 4]).reshape([{n}, {ch * b * b}, {h // b}, {w // b}])")


def _emit_resize(c: Ctx) -> str:
    out = c.out_shape()
    rank = len(out)
    if rank not in (3, 4, 5) or tuple(out[:2]) != tuple(c.in_shape(0)[:2]):
        raise c.unsupported("only spatial resizing of NC... tensors is supported")
    mode = c.attr("mode", "nearest")
    ctm = c.attr("coordinate_transformation_mode", "half_pixel" if c.opset >= 11 else "asymmetric")
    size = _lst(out[2:])
    if mode == "nearest":
        nm = c.attr("nearest_mode", "round_prefer_floor")
        if ctm == "asymmetric" and (nm == "floor" or c.opset < 11):
            return f"{c.out()} = F.interpolate({c.x[0]}, size={size}, mode='nearest')"
        if ctm in ("half_pixel", "pytorch_half_pixel") and nm in ("round_prefer_floor", "round_prefer_ceil"):
            return f"{c.out()} = F.interpolate({c.x[0]}, size={size}, mode='nearest-exact')"
        raise c.unsupported(f"nearest resize with coordinate_transformation_mode={ctm!r}, "
                            f"nearest_mode={nm!r} is not supported")
    if mode == "linear":
        tmode = {3: "linear", 4: "bilinear", 5: "trilinear"}[rank]
        if ctm == "align_corners":
            return f"{c.out()} = F.interpolate({c.x[0]}, size={size}, mode='{tmode}', align_corners=True)"
        if ctm in ("half_pixel", "pytorch_half_pixel"):
            return f"{c.out()} = F.interpolate({c.x[0]}, size={size}, mode='{tmode}', align_corners=False)"
        raise c.unsupported(f"linear resize with coordinate_transformation_mode={ctm!r} is not supported")
    raise c.unsupported(f"resize mode {mode!r} is not supported")


# ------------------------------------------------------------------------------ reductions


def _reduce(fn: str) -> Callable[[Ctx], str]:
    def emit_(c: Ctx) -> str:
        rank = len(c.in_shape(0))
        axes_from_input = c.opset >= 18 or (fn == "sum" and c.opset >= 13)
        axes = _axes(c, 1) if axes_from_input else (
            [int(a) for a in c.attr("axes")] if c.attr("axes") is not None else None)
        keep = bool(c.attr("keepdims", 1))
        if axes is None or not axes:
            if int(c.attr("noop_with_empty_axes", 0)) and axes_from_input:
                return f"{c.out()} = {c.x[0]}"
            axes = list(range(rank))
        axes = sorted(_norm_axis(a, rank) for a in axes)
        x = c.x[0]
        dims = _lst(axes)
        if fn == "mean":
            e = f"torch.mean({x}, {dims}, {keep})"
        elif fn == "sum":
            e = f"torch.sum({x}, {dims}, {keep})"
        elif fn == "max":
            e = f"torch.amax({x}, {dims}, {keep})"
        elif fn == "min":
            e = f"torch.amin({x}, {dims}, {keep})"
        elif fn == "prod":
            e = x
            for a in reversed(axes):
                e = f"torch.prod({e}, {a}, {keep})"
        elif fn == "l2":
            e = f"torch.sqrt(torch.sum({x} * {x}, {dims}, {keep}))"
        elif fn == "l1":
            e = f"torch.sum(torch.abs({x}), {dims}, {keep})"
        elif fn == "sumsquare":
            e = f"torch.sum({x} * {x}, {dims}, {keep})"
        elif fn == "logsumexp":
            e = f"torch.logsumexp({x}, {dims}, {keep})"
        elif fn == "logsum":
            e = f"torch.log(torch.sum({x}, {dims}, {keep}))"
        else:  # pragma: no cover - registry and branches are kept in sync
            raise AssertionError(fn)
        return f"{c.out()} = {e}"
    return emit_


def _arg(fn: str) -> Callable[[Ctx], str]:
    def emit_(c: Ctx) -> str:
        rank = len(c.in_shape(0))
        axis = _norm_axis(int(c.attr("axis", 0)), rank)
        keep = bool(c.attr("keepdims", 1))
        if int(c.attr("select_last_index", 0)):
            d = c.in_shape(0)[axis]
            return (f"{c.out()} = {d - 1} - torch.{fn}(torch.flip({c.x[0]}, [{axis}]), {axis}, {keep})")
        return f"{c.out()} = torch.{fn}({c.x[0]}, {axis}, {keep})"
    return emit_


def _emit_cumsum(c: Ctx) -> str:
    ax = c.const(1)
    if ax is None:
        raise c.unsupported("non-constant axis is not supported")
    rank = len(c.in_shape(0))
    axis = _norm_axis(int(ax.ravel()[0]), rank)
    x = c.x[0]
    rev, exc = int(c.attr("reverse", 0)), int(c.attr("exclusive", 0))
    if rev:
        x = f"torch.flip({x}, [{axis}])"
    e = f"torch.cumsum({x}, {axis})"
    if exc:
        e = f"({e} - {x})"
    if rev:
        e = f"torch.flip({e}, [{axis}])"
    return f"{c.out()} = {e}"


def _emit_topk(c: Ctx) -> str:
    k = c.const(1)
    if k is None:
        raise c.unsupported("non-constant k is not supported")
    rank = len(c.in_shape(0))
    axis = _norm_axis(int(c.attr("axis", -1)), rank)
    largest, sorted_ = bool(c.attr("largest", 1)), bool(c.attr("sorted", 1))
    return (f"_tk = torch.topk({c.x[0]}, {int(k.ravel()[0])}, {axis}, {largest}, {sorted_}); "
            f"{c.y[0]} = _tk[0]; {c.y[1] if len(c.y) > 1 else '_unused'} = _tk[1]")


# ------------------------------------------------------------------------------ registry


EMITTERS: dict[str, Callable[[Ctx], str]] = {
    # convolution and pooling
    "Conv": _emit_conv,
    "ConvTranspose": _emit_conv_transpose,
    "MaxPool": lambda c: _emit_pool(c, "max"),
    "AveragePool": lambda c: _emit_pool(c, "avg"),
    "GlobalAveragePool": lambda c: _emit_global_pool(c, "avg"),
    "GlobalMaxPool": lambda c: _emit_global_pool(c, "max"),
    "LRN": _emit_lrn,
    # normalization
    "BatchNormalization": _emit_bn,
    "LayerNormalization": _emit_layer_norm,
    "InstanceNormalization": _emit_instance_norm,
    "Softmax": _softmax_like("torch.softmax"),
    "LogSoftmax": _softmax_like("torch.log_softmax"),
    # linear algebra
    "Gemm": _emit_gemm,
    "MatMul": _emit_matmul,
    "Einsum": _emit_einsum,
    # elementwise binary / variadic
    "Add": _binary("+"),
    "Sub": _binary("-"),
    "Mul": _binary("*"),
    "Div": _emit_div,
    "Pow": _emit_pow,
    "Mod": _emit_mod,
    "Sum": _variadic("+"),
    "Mean": _emit_mean,
    "Max": _variadic("torch.maximum"),
    "Min": _variadic("torch.minimum"),
    "PRelu": _emit_prelu,
    "Equal": _cmp("torch.eq"),
    "Less": _cmp("torch.lt"),
    "LessOrEqual": _cmp("torch.le"),
    "Greater": _cmp("torch.gt"),
    "GreaterOrEqual": _cmp("torch.ge"),
    "And": _cmp("torch.logical_and"),
    "Or": _cmp("torch.logical_or"),
    "Xor": _cmp("torch.logical_xor"),
    "Where": _emit_where,
    # elementwise unary
    "Clip": _emit_clip,
    "Erf": _unary("torch.erf"),
    "Sqrt": _unary("torch.sqrt"),
    "Reciprocal": _unary("torch.reciprocal"),
    "Exp": _unary("torch.exp"),
    "Log": _unary("torch.log"),
    "Neg": _unary("torch.neg"),
    "Abs": _unary("torch.abs"),
    "Floor": _unary("torch.floor"),
    "Ceil": _unary("torch.ceil"),
    "Round": _unary("torch.round"),
    "Sign": _unary("torch.sign"),
    "Sin": _unary("torch.sin"),
    "Cos": _unary("torch.cos"),
    "Not": _unary("torch.logical_not"),
    "IsNaN": _unary("torch.isnan"),
    "Cast": _emit_cast,
    "CastLike": _emit_cast_like,
    # shapes and data movement
    "Reshape": _emit_reshape_static,
    "Flatten": _emit_reshape_static,
    "Squeeze": _emit_squeeze_like,
    "Unsqueeze": _emit_squeeze_like,
    "Transpose": _emit_transpose,
    "Concat": _emit_concat,
    "Split": _emit_split,
    "Slice": _emit_slice,
    "Gather": _emit_gather,
    "GatherElements": _emit_gather_elements,
    "Expand": _emit_expand,
    "Tile": _emit_tile,
    "Pad": _emit_pad,
    "Shape": _emit_shape,
    "Size": _emit_size,
    "ConstantOfShape": _emit_constant_of_shape,
    "Range": _emit_range,
    "Constant": _emit_constant,
    "DepthToSpace": _emit_depth_to_space,
    "SpaceToDepth": _emit_space_to_depth,
    "Resize": _emit_resize,
    # reductions
    "ReduceMean": _reduce("mean"),
    "ReduceSum": _reduce("sum"),
    "ReduceMax": _reduce("max"),
    "ReduceMin": _reduce("min"),
    "ReduceProd": _reduce("prod"),
    "ReduceL1": _reduce("l1"),
    "ReduceL2": _reduce("l2"),
    "ReduceSumSquare": _reduce("sumsquare"),
    "ReduceLogSumExp": _reduce("logsumexp"),
    "ReduceLogSum": _reduce("logsum"),
    "ArgMax": _arg("argmax"),
    "ArgMin": _arg("argmin"),
    "CumSum": _emit_cumsum,
    "TopK": _emit_topk,
}
EMITTERS.update({op: _emit_activation for op in ACTIVATIONS})


def supported_ops() -> list[str]:
    """Every ONNX op type the torch backend can translate (aliases included)."""
    return sorted(set(EMITTERS) | ALIAS_OPS)


def emit(c: Ctx) -> str:
    """Python statements computing node ``c.node``; :class:`UnsupportedOperator` otherwise."""
    n = c.node
    if n.domain not in ("", "ai.onnx"):
        raise UnsupportedOperator(
            f"node {n.name!r}: operator domain {n.domain!r} ({n.op_type}) is not supported by the "
            "torch backend; only the default ONNX domain is")
    fn = EMITTERS.get(n.op_type)
    if fn is None:
        raise UnsupportedOperator(
            f"node {n.name!r}: ONNX operator {n.op_type!r} is not supported by the torch backend "
            f"(xflow.runtime.backend_ops); supported: {', '.join(supported_ops())}")
    return fn(c)
