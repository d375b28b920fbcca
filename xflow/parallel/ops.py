"""ONNX operator → PyTorch source-code translation used by the code generator and the profiler.

Each supported ONNX operator has one emitter: a function that receives the node (its input/output
variable names, attributes, constant inputs and statically inferred shapes) and returns one line of
Python that computes the outputs with ``torch`` / ``torch.nn.functional``. The same lines are used by
the per-operator profiler, so what is measured is exactly what the generated module runs.

Emitted code is TorchScript-compatible (literal lists, typed scalars) so the ``torchscript`` backend
can script the generated module. An operator that is not in :data:`EMITTERS` raises
:class:`xflow.errors.UnsupportedOperator` naming the operator and the supported set.

To add an operator: write ``_emit_<op>(n: OpNode) -> str`` and add it to :data:`EMITTERS`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from xflow.errors import UnsupportedOperator

__all__ = ["OpNode", "EMITTERS", "emit", "supported_ops", "ALIAS_OPS"]

# Operators that only forward their input: compiled to a variable alias, never to a torch call.
ALIAS_OPS = frozenset({"Identity", "Dropout"})


@dataclass
class OpNode:
    """What an emitter needs to know about one ONNX node.

    Attributes:
        op: ONNX op type.
        name: node name (for comments and error messages).
        inputs: Python expressions for the inputs (a variable, ``self.w_x`` for a weight, or ``None``
            for an omitted optional input).
        outputs: variable names to assign.
        attrs: decoded ONNX attributes.
        consts: numpy values of inputs that are initializers (by input position).
        in_shapes / out_shapes: static shapes from ONNX shape inference (``None`` if unknown).
    """

    op: str
    name: str
    inputs: list[str | None]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    consts: dict[int, np.ndarray] = field(default_factory=dict)
    in_shapes: list[tuple[int, ...] | None] = field(default_factory=list)
    out_shapes: list[tuple[int, ...] | None] = field(default_factory=list)

    def const(self, i: int) -> np.ndarray | None:
        """Constant value of input ``i`` (``None`` if absent or not constant)."""
        if i >= len(self.inputs) or self.inputs[i] is None:
            return None
        return self.consts.get(i)


def _lst(v) -> str:
    return "[" + ", ".join(str(int(x)) for x in v) + "]"


def _f(x: float) -> str:
    x = float(x)
    if np.isinf(x):
        return "float('inf')" if x > 0 else "float('-inf')"
    return repr(x)


def _out(n: OpNode) -> str:
    return n.outputs[0] if len(n.outputs) == 1 else ", ".join(n.outputs)


def _spatial_pads(n: OpNode, k: int) -> tuple[list[int], list[int]]:
    if n.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID", b"NOTSET", b"VALID"):
        raise UnsupportedOperator(
            f"{n.op} node {n.name!r}: auto_pad={n.attrs['auto_pad']!r} is not supported; "
            "re-export the model with explicit pads"
        )
    pads = list(n.attrs.get("pads", [0] * (2 * k)))
    return pads[:k], pads[k:]


def _torch_pad(begin: list[int], end: list[int]) -> list[int]:
    """ONNX [b1..bk, e1..ek] → torch.nn.functional.pad order (last dim first)."""
    out: list[int] = []
    for b, e in zip(reversed(begin), reversed(end)):
        out += [int(b), int(e)]
    return out


def _emit_conv(n: OpNode) -> str:
    w_shape = n.in_shapes[1] if len(n.in_shapes) > 1 else None
    k = len(n.attrs.get("kernel_shape", w_shape[2:] if w_shape else [1, 1]))
    if k not in (1, 2, 3):
        raise UnsupportedOperator(f"Conv node {n.name!r}: {k}-D convolution is not supported")
    begin, end = _spatial_pads(n, k)
    strides = n.attrs.get("strides", [1] * k)
    dil = n.attrs.get("dilations", [1] * k)
    group = int(n.attrs.get("group", 1))
    x = n.inputs[0]
    if begin != end:
        x = f"F.pad({x}, {_lst(_torch_pad(begin, end))})"
        begin = [0] * k
    bias = n.inputs[2] if len(n.inputs) > 2 and n.inputs[2] is not None else "None"
    return (f"{_out(n)} = F.conv{k}d({x}, {n.inputs[1]}, {bias}, {_lst(strides)}, {_lst(begin)}, "
            f"{_lst(dil)}, {group})")


def _emit_pool(n: OpNode, kind: str) -> str:
    ks = n.attrs["kernel_shape"]
    k = len(ks)
    if k not in (1, 2, 3):
        raise UnsupportedOperator(f"{n.op} node {n.name!r}: {k}-D pooling is not supported")
    begin, end = _spatial_pads(n, k)
    strides = n.attrs.get("strides", [1] * k)
    ceil = bool(n.attrs.get("ceil_mode", 0))
    x = n.inputs[0]
    if begin != end or any(2 * b > kk for b, kk in zip(begin, ks)):
        if kind == "avg" and n.attrs.get("count_include_pad", 0) == 0 and any(begin + end):
            raise UnsupportedOperator(f"AveragePool node {n.name!r}: asymmetric padding without "
                                      "count_include_pad is not supported")
        fill = "float('-inf')" if kind == "max" else "0.0"
        x = f"F.pad({x}, {_lst(_torch_pad(begin, end))}, 'constant', {fill})"
        begin = [0] * k
    if kind == "max":
        dil = n.attrs.get("dilations", [1] * k)
        if len(n.outputs) > 1:
            raise UnsupportedOperator(f"MaxPool node {n.name!r}: the Indices output is not supported")
        return (f"{_out(n)} = F.max_pool{k}d({x}, {_lst(ks)}, {_lst(strides)}, {_lst(begin)}, "
                f"{_lst(dil)}, {ceil})")
    cip = bool(n.attrs.get("count_include_pad", 0))
    return f"{_out(n)} = F.avg_pool{k}d({x}, {_lst(ks)}, {_lst(strides)}, {_lst(begin)}, {ceil}, {cip})"


def _emit_gap(n: OpNode) -> str:
    shp = n.in_shapes[0]
    rank = len(shp) if shp is not None else 4
    dims = _lst(range(2, rank))
    return f"{_out(n)} = torch.mean({n.inputs[0]}, {dims}, True)"


def _emit_concat(n: OpNode) -> str:
    return f"{_out(n)} = torch.cat([{', '.join(i for i in n.inputs if i)}], {int(n.attrs['axis'])})"


def _binary(sym: str) -> Callable[[OpNode], str]:
    def emit_(n: OpNode) -> str:
        return f"{_out(n)} = {n.inputs[0]} {sym} {n.inputs[1]}"
    return emit_


def _emit_gemm(n: OpNode) -> str:
    a, b = n.inputs[0], n.inputs[1]
    c = n.inputs[2] if len(n.inputs) > 2 and n.inputs[2] is not None else None
    alpha, beta = float(n.attrs.get("alpha", 1.0)), float(n.attrs.get("beta", 1.0))
    ta, tb = int(n.attrs.get("transA", 0)), int(n.attrs.get("transB", 0))
    if not ta and tb and alpha == 1.0 and beta == 1.0:
        return f"{_out(n)} = F.linear({a}, {b}, {c if c else 'None'})"
    if ta:
        a = f"{a}.t()"
    if not tb:
        b = f"{b}.t()"  # F.linear wants (out, in)
    expr = f"F.linear({a}, {b})"
    if alpha != 1.0:
        expr = f"{_f(alpha)} * {expr}"
    if c:
        expr += f" + {_f(beta)} * {c}" if beta != 1.0 else f" + {c}"
    return f"{_out(n)} = {expr}"


def _static_shape(n: OpNode) -> tuple[int, ...]:
    shp = n.out_shapes[0] if n.out_shapes else None
    if shp is None or any(not isinstance(d, int) or d < 0 for d in shp):
        raise UnsupportedOperator(
            f"{n.op} node {n.name!r}: output shape is not static ({shp}); export the model with "
            "fixed input shapes (no dynamic axes)"
        )
    return tuple(shp)


def _emit_reshape(n: OpNode) -> str:
    return f"{_out(n)} = {n.inputs[0]}.reshape({_lst(_static_shape(n))})"


def _emit_bn(n: OpNode) -> str:
    eps = _f(n.attrs.get("epsilon", 1e-5))
    x, s, b, m, v = n.inputs[:5]
    return f"{n.outputs[0]} = F.batch_norm({x}, {m}, {v}, {s}, {b}, False, 0.0, {eps})"


def _emit_clip(n: OpNode) -> str:
    lo = n.attrs.get("min")
    hi = n.attrs.get("max")
    for i, dflt in ((1, None), (2, None)):
        if len(n.inputs) > i and n.inputs[i] is not None:
            c = n.const(i)
            if c is None:
                raise UnsupportedOperator(f"Clip node {n.name!r}: non-constant min/max is not supported")
            if i == 1:
                lo = float(c)
            else:
                hi = float(c)
    lo_s = _f(lo) if lo is not None else "None"
    hi_s = _f(hi) if hi is not None else "None"
    if lo == 0.0 and hi == 6.0:
        return f"{_out(n)} = F.relu6({n.inputs[0]})"
    return f"{_out(n)} = torch.clamp({n.inputs[0]}, {lo_s}, {hi_s})"


def _emit_softmax(n: OpNode) -> str:
    axis = int(n.attrs.get("axis", -1))
    return f"{_out(n)} = torch.softmax({n.inputs[0]}, {axis})"


def _emit_pad(n: OpNode) -> str:
    mode = n.attrs.get("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    pads = n.const(1)
    if pads is None:
        pads = n.attrs.get("pads")
    if pads is None:
        raise UnsupportedOperator(f"Pad node {n.name!r}: non-constant pads are not supported")
    pads = [int(p) for p in np.asarray(pads).ravel()]
    if len(n.inputs) > 3 and n.inputs[3] is not None:
        raise UnsupportedOperator(f"Pad node {n.name!r}: the axes input is not supported")
    k = len(pads) // 2
    tp = _torch_pad(pads[:k], pads[k:])
    while len(tp) > 2 and tp[-1] == 0 and tp[-2] == 0:
        tp = tp[:-2]  # torch only pads trailing dims: drop leading zero pairs
    val = 0.0
    c = n.const(2)
    if c is not None and c.size:
        val = float(c.ravel()[0])
    elif "value" in n.attrs:
        val = float(n.attrs["value"])
    tmode = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}.get(mode)
    if tmode is None:
        raise UnsupportedOperator(f"Pad node {n.name!r}: mode {mode!r} is not supported")
    if tmode == "constant":
        return f"{_out(n)} = F.pad({n.inputs[0]}, {_lst(tp)}, 'constant', {_f(val)})"
    return f"{_out(n)} = F.pad({n.inputs[0]}, {_lst(tp)}, '{tmode}')"


def _emit_split(n: OpNode) -> str:
    axis = int(n.attrs.get("axis", 0))
    split = n.const(1)
    if split is None:
        split = n.attrs.get("split")
    if split is None:
        shapes = [s for s in n.out_shapes]
        if any(s is None for s in shapes):
            raise UnsupportedOperator(f"Split node {n.name!r}: split sizes unknown")
        split = [s[axis] for s in shapes]
    sizes = _lst(np.asarray(split).ravel())
    parts = "; ".join(f"{o} = _sp[{k}]" for k, o in enumerate(n.outputs))
    return f"_sp = torch.split({n.inputs[0]}, {sizes}, {axis}); {parts}"


def _emit_flatten(n: OpNode) -> str:
    return f"{_out(n)} = {n.inputs[0]}.reshape({_lst(_static_shape(n))})"


def _emit_transpose(n: OpNode) -> str:
    perm = n.attrs.get("perm")
    if perm is None:
        shp = n.in_shapes[0]
        perm = list(reversed(range(len(shp))))
    return f"{_out(n)} = {n.inputs[0]}.permute({_lst(perm)})"


def _emit_unsqueeze_like(n: OpNode) -> str:
    return f"{_out(n)} = {n.inputs[0]}.reshape({_lst(_static_shape(n))})"


def _emit_leaky(n: OpNode) -> str:
    return f"{_out(n)} = F.leaky_relu({n.inputs[0]}, {_f(n.attrs.get('alpha', 0.01))})"


def _emit_hardsigmoid(n: OpNode) -> str:
    a, b = float(n.attrs.get("alpha", 0.2)), float(n.attrs.get("beta", 0.5))
    return f"{_out(n)} = torch.clamp({n.inputs[0]} * {_f(a)} + {_f(b)}, 0.0, 1.0)"


def _unary(fn: str) -> Callable[[OpNode], str]:
    def emit_(n: OpNode) -> str:
        return f"{_out(n)} = {fn}({n.inputs[0]})"
    return emit_


EMITTERS: dict[str, Callable[[OpNode], str]] = {
    "Conv": _emit_conv,
    "Relu": _unary("torch.relu"),
    "MaxPool": lambda n: _emit_pool(n, "max"),
    "AveragePool": lambda n: _emit_pool(n, "avg"),
    "GlobalAveragePool": _emit_gap,
    "Concat": _emit_concat,
    "Add": _binary("+"),
    "Sub": _binary("-"),
    "Mul": _binary("*"),
    "Div": _binary("/"),
    "Gemm": _emit_gemm,
    "MatMul": lambda n: f"{_out(n)} = torch.matmul({n.inputs[0]}, {n.inputs[1]})",
    "Flatten": _emit_flatten,
    "Reshape": _emit_reshape,
    "Squeeze": _emit_unsqueeze_like,
    "Unsqueeze": _emit_unsqueeze_like,
    "Transpose": _emit_transpose,
    "BatchNormalization": _emit_bn,
    "Clip": _emit_clip,
    "Sigmoid": _unary("torch.sigmoid"),
    "Tanh": _unary("torch.tanh"),
    "HardSigmoid": _emit_hardsigmoid,
    "HardSwish": _unary("F.hardswish"),
    "LeakyRelu": _emit_leaky,
    "Softmax": _emit_softmax,
    "Pad": _emit_pad,
    "Split": _emit_split,
}


def supported_ops() -> list[str]:
    """Every ONNX op type the generator can translate (aliases included)."""
    return sorted(set(EMITTERS) | ALIAS_OPS)


def emit(n: OpNode, domain: str = "") -> str:
    """One line of Python computing node ``n``; raises :class:`UnsupportedOperator` otherwise."""
    if domain not in ("", "ai.onnx"):
        raise UnsupportedOperator(
            f"node {n.name!r}: operator domain {domain!r} ({n.op}) is not supported; only the "
            "default ONNX domain is"
        )
    fn = EMITTERS.get(n.op)
    if fn is None:
        raise UnsupportedOperator(
            f"node {n.name!r}: ONNX operator {n.op!r} is not supported by xflow.parallel code "
            f"generation; supported: {', '.join(supported_ops())}"
        )
    return fn(n)
