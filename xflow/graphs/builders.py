"""Named toy ONNX graphs shared by tests, notebooks and rewrite rules.

Each ``make_*`` function returns a small, valid (``onnx.checker``-clean) opset-17
``onnx.ModelProto`` whose weights are drawn from ``numpy.random.default_rng(seed)``,
so the same call always yields byte-identical models. The graphs are shaped to exhibit
one rewrite opportunity each:

============================  ===============================================================
``make_conv_bn_relu``         Conv -> BatchNormalization -> Relu (fuse BN into Conv)
``make_sibling_convs``        several Convs reading the same input (merge siblings), with
                              equal and different kernel sizes
``make_qkv_matmuls``          self-attention with separate Q/K/V MatMul+Add projections
``make_split_concat``         Split -> Concat of the same pieces (a no-op pair)
``make_transpose_chain``      consecutive Transposes (compose / cancel)
``make_matmul_chain``         x @ W1 @ W2 @ ... (re-associate / pre-multiply constants)
``make_inception_like``       an Inception block: 1x1, 1x1->3x3, 1x1->5x5, pool->1x1, Concat
``make_folding_example``      weights produced by Constant/Identity/ConstantOfShape chains
============================  ===============================================================

``batch`` may be a string (e.g. ``"N"``) to produce a symbolic batch dimension, which is
how tests exercise :class:`xflow.errors.DynamicShapeError`.

Use :func:`build` to create one by name (``BUILDERS`` lists them).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from xflow.errors import UnknownName

__all__ = [
    "OPSET",
    "BUILDERS",
    "build",
    "make_conv_bn_relu",
    "make_sibling_convs",
    "make_qkv_matmuls",
    "make_split_concat",
    "make_transpose_chain",
    "make_matmul_chain",
    "make_inception_like",
    "make_folding_example",
]

#: The default-domain opset every builder targets.
OPSET = 17

Dim = int | str


def _model(nodes, name, inputs, outputs, inits, *, check: bool = True) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="xflow.builders"
    )
    model.ir_version = 8  # supported by every onnxruntime we pin
    if check:
        onnx.checker.check_model(model)
    return model


def _vi(name: str, shape: Sequence[Dim], dtype: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, list(shape))


def _init(rng: np.random.Generator, name: str, shape: Sequence[int], scale: float | None = None):
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])
    s = scale if scale is not None else 1.0 / np.sqrt(max(fan_in, 1))
    return numpy_helper.from_array((rng.standard_normal(shape) * s).astype(np.float32), name)


def _conv(
    rng, nodes, inits, x: str, y: str, cin: int, cout: int, k: int, *, prefix: str,
    groups: int = 1, bias: bool = True, stride: int = 1,
) -> None:
    """Append a 'same'-padded Conv ``y = conv(x)`` with weight ``{prefix}.weight``."""
    w = f"{prefix}.weight"
    inits.append(_init(rng, w, (cout, cin // groups, k, k)))
    ins = [x, w]
    if bias:
        inits.append(_init(rng, f"{prefix}.bias", (cout,), scale=0.1))
        ins.append(f"{prefix}.bias")
    p = k // 2
    nodes.append(
        helper.make_node(
            "Conv", ins, [y], name=prefix, kernel_shape=[k, k], pads=[p, p, p, p],
            strides=[stride, stride], group=groups,
        )
    )


def make_conv_bn_relu(
    batch: Dim = 1, channels: int = 3, out_channels: int = 8, size: int = 16, kernel: int = 3,
    seed: int = 0,
) -> onnx.ModelProto:
    """``x -> Conv -> BatchNormalization -> Relu -> y`` (NCHW, 'same' padding).

    The BN has non-trivial scale/bias/mean/var so folding it into the Conv is observable.
    """
    rng = np.random.default_rng(seed)
    nodes: list = []
    inits: list = []
    _conv(rng, nodes, inits, "x", "conv_out", channels, out_channels, kernel, prefix="conv")
    c = out_channels
    inits += [
        numpy_helper.from_array((1 + 0.1 * rng.standard_normal(c)).astype(np.float32), "bn.scale"),
        numpy_helper.from_array((0.1 * rng.standard_normal(c)).astype(np.float32), "bn.bias"),
        numpy_helper.from_array((0.1 * rng.standard_normal(c)).astype(np.float32), "bn.mean"),
        numpy_helper.from_array((0.5 + rng.random(c)).astype(np.float32), "bn.var"),
    ]
    nodes.append(
        helper.make_node(
            "BatchNormalization", ["conv_out", "bn.scale", "bn.bias", "bn.mean", "bn.var"],
            ["bn_out"], name="bn", epsilon=1e-5,
        )
    )
    nodes.append(helper.make_node("Relu", ["bn_out"], ["y"], name="relu"))
    return _model(
        nodes, "conv_bn_relu",
        [_vi("x", (batch, channels, size, size))],
        [_vi("y", (batch, out_channels, size, size))],
        inits,
    )


def make_sibling_convs(
    batch: Dim = 1, channels: int = 8, size: int = 16,
    kernels: Sequence[int] = (3, 3, 1), out_channels: Sequence[int] = (8, 8, 4),
    relu: bool = True, seed: int = 0,
) -> onnx.ModelProto:
    """Several 'same'-padded Convs that all read ``x``; each feeds its own output ``y{i}``.

    The default has two 3x3 siblings (mergeable directly) and a 1x1 sibling (mergeable
    after zero-padding its kernel to 3x3). With ``relu`` each Conv is followed by a Relu.
    """
    if len(kernels) != len(out_channels):
        raise ValueError("kernels and out_channels must have the same length")
    rng = np.random.default_rng(seed)
    nodes: list = []
    inits: list = []
    outputs = []
    for i, (k, co) in enumerate(zip(kernels, out_channels)):
        conv_out = f"conv{i}_out" if relu else f"y{i}"
        _conv(rng, nodes, inits, "x", conv_out, channels, co, k, prefix=f"conv{i}")
        if relu:
            nodes.append(helper.make_node("Relu", [conv_out], [f"y{i}"], name=f"relu{i}"))
        outputs.append(_vi(f"y{i}", (batch, co, size, size)))
    return _model(nodes, "sibling_convs", [_vi("x", (batch, channels, size, size))], outputs, inits)


def make_qkv_matmuls(
    batch: Dim = 1, seq: int = 8, hidden: int = 16, seed: int = 0
) -> onnx.ModelProto:
    """Single-head self-attention with separate Q/K/V projections.

    ``q,k,v = x @ W{q,k,v} + b{q,k,v}``; ``y = softmax(q @ k^T / sqrt(h)) @ v``.
    The three MatMuls share ``x`` (merge into one MatMul + Split).
    """
    rng = np.random.default_rng(seed)
    nodes: list = []
    inits: list = []
    for p in ("q", "k", "v"):
        inits.append(_init(rng, f"W{p}", (hidden, hidden)))
        inits.append(_init(rng, f"b{p}", (hidden,), scale=0.1))
        nodes.append(helper.make_node("MatMul", ["x", f"W{p}"], [f"{p}_mm"], name=f"{p}_proj"))
        nodes.append(helper.make_node("Add", [f"{p}_mm", f"b{p}"], [p], name=f"{p}_bias"))
    inits.append(numpy_helper.from_array(np.array(1.0 / np.sqrt(hidden), np.float32), "scale"))
    nodes += [
        helper.make_node("Transpose", ["k"], ["kT"], name="k_transpose", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kT"], ["scores_raw"], name="scores"),
        helper.make_node("Mul", ["scores_raw", "scale"], ["scores_scaled"], name="scale_scores"),
        helper.make_node("Softmax", ["scores_scaled"], ["attn"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["attn", "v"], ["y"], name="context"),
    ]
    return _model(
        nodes, "qkv_matmuls", [_vi("x", (batch, seq, hidden))], [_vi("y", (batch, seq, hidden))],
        inits,
    )


def make_split_concat(
    batch: Dim = 1, channels: int = 8, size: int = 8, parts: int = 2,
    branch_op: str | None = None, seed: int = 0,
) -> onnx.ModelProto:
    """``x -> Relu -> Split(axis=1, parts) -> [branch_op] -> Concat(axis=1) -> Relu -> y``.

    With ``branch_op=None`` the Split/Concat pair is an identity (removable); with e.g.
    ``branch_op="Sigmoid"`` each piece passes through that unary op first.
    """
    del seed  # no weights; kept for a uniform builder signature
    if channels % parts:
        raise ValueError(f"channels={channels} is not divisible by parts={parts}")
    nodes = [helper.make_node("Relu", ["x"], ["h"], name="pre_relu")]
    pieces = [f"piece{i}" for i in range(parts)]
    split = numpy_helper.from_array(np.full(parts, channels // parts, np.int64), "split_sizes")
    nodes.append(helper.make_node("Split", ["h", "split_sizes"], pieces, name="split", axis=1))
    cat_in = pieces
    if branch_op:
        cat_in = [f"{p}_{branch_op.lower()}" for p in pieces]
        nodes += [
            helper.make_node(branch_op, [p], [q], name=f"{branch_op.lower()}{i}")
            for i, (p, q) in enumerate(zip(pieces, cat_in))
        ]
    nodes.append(helper.make_node("Concat", cat_in, ["cat"], name="concat", axis=1))
    nodes.append(helper.make_node("Relu", ["cat"], ["y"], name="post_relu"))
    shape = (batch, channels, size, size)
    return _model(nodes, "split_concat", [_vi("x", shape)], [_vi("y", shape)], [split])


def make_transpose_chain(
    shape: Sequence[Dim] = (2, 3, 4, 5),
    perms: Sequence[Sequence[int]] = ((0, 2, 1, 3), (0, 2, 1, 3)),
    seed: int = 0,
) -> onnx.ModelProto:
    """``x -> Transpose(p1) -> ... -> Transpose(pn) -> Relu -> y``.

    The default pair of perms composes to the identity (both Transposes cancel).
    """
    del seed
    nodes = []
    cur = "x"
    cur_shape = list(shape)
    for i, perm in enumerate(perms):
        nxt = f"t{i}"
        nodes.append(helper.make_node("Transpose", [cur], [nxt], name=f"transpose{i}", perm=list(perm)))
        cur, cur_shape = nxt, [cur_shape[p] for p in perm]
    nodes.append(helper.make_node("Relu", [cur], ["y"], name="relu"))
    return _model(nodes, "transpose_chain", [_vi("x", shape)], [_vi("y", cur_shape)], [])


def make_matmul_chain(
    batch: Dim = 4, dims: Sequence[int] = (16, 32, 8, 16), seed: int = 0
) -> onnx.ModelProto:
    """``y = x @ W1 @ W2 @ ... `` with ``x: (batch, dims[0])`` and ``Wi: (dims[i-1], dims[i])``."""
    rng = np.random.default_rng(seed)
    nodes = []
    inits = []
    cur = "x"
    for i in range(1, len(dims)):
        w = f"W{i}"
        inits.append(_init(rng, w, (dims[i - 1], dims[i])))
        out = "y" if i == len(dims) - 1 else f"h{i}"
        nodes.append(helper.make_node("MatMul", [cur, w], [out], name=f"matmul{i}"))
        cur = out
    return _model(
        nodes, "matmul_chain", [_vi("x", (batch, dims[0]))], [_vi("y", (batch, dims[-1]))], inits
    )


def make_inception_like(
    batch: Dim = 1, channels: int = 8, size: int = 16, branch_channels: int = 4, seed: int = 0
) -> onnx.ModelProto:
    """An Inception-v1 block: four branches (1x1; 1x1->3x3; 1x1->5x5; maxpool3x3->1x1),
    each conv followed by Relu, concatenated on channels."""
    rng = np.random.default_rng(seed)
    nodes: list = []
    inits: list = []
    b = branch_channels

    def conv_relu(x, name, cin, cout, k):
        _conv(rng, nodes, inits, x, f"{name}_out", cin, cout, k, prefix=name)
        nodes.append(helper.make_node("Relu", [f"{name}_out"], [f"{name}_act"], name=f"{name}_relu"))
        return f"{name}_act"

    y1 = conv_relu("x", "b1_1x1", channels, b, 1)
    y2 = conv_relu(conv_relu("x", "b2_1x1", channels, b, 1), "b2_3x3", b, b, 3)
    y3 = conv_relu(conv_relu("x", "b3_1x1", channels, b, 1), "b3_5x5", b, b, 5)
    nodes.append(
        helper.make_node(
            "MaxPool", ["x"], ["pool"], name="b4_pool", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
            strides=[1, 1],
        )
    )
    y4 = conv_relu("pool", "b4_1x1", channels, b, 1)
    nodes.append(helper.make_node("Concat", [y1, y2, y3, y4], ["y"], name="concat", axis=1))
    return _model(
        nodes, "inception_like", [_vi("x", (batch, channels, size, size))],
        [_vi("y", (batch, 4 * b, size, size))], inits,
    )


def make_folding_example(
    batch: Dim = 1, channels: int = 3, out_channels: int = 4, size: int = 8, seed: int = 0
) -> onnx.ModelProto:
    """A Conv whose weight comes from ``Constant -> Identity`` and whose bias-like addend comes
    from ``ConstantOfShape -> Mul(Constant)``: after :func:`xflow.graphs.fold_constants` both
    become initializers and only ``Conv -> Add -> Relu`` remain."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((out_channels, channels, 3, 3)) / 3).astype(np.float32)
    nodes = [
        helper.make_node("Constant", [], ["w_const"], name="w_constant",
                         value=numpy_helper.from_array(w, "w_value")),
        helper.make_node("Identity", ["w_const"], ["w"], name="w_identity"),
        helper.make_node("Conv", ["x", "w"], ["conv_out"], name="conv", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Constant", [], ["bias_shape"], name="bias_shape_constant",
                         value=numpy_helper.from_array(np.array([1, out_channels, 1, 1], np.int64),
                                                       "bias_shape_value")),
        helper.make_node("ConstantOfShape", ["bias_shape"], ["ones"], name="ones",
                         value=numpy_helper.from_array(np.array([1.0], np.float32), "one")),
        helper.make_node("Constant", [], ["half"], name="half_constant", value_float=0.5),
        helper.make_node("Mul", ["ones", "half"], ["bias"], name="bias_mul"),
        helper.make_node("Add", ["conv_out", "bias"], ["biased"], name="add_bias"),
        helper.make_node("Relu", ["biased"], ["y"], name="relu"),
    ]
    return _model(
        nodes, "folding_example", [_vi("x", (batch, channels, size, size))],
        [_vi("y", (batch, out_channels, size, size))], [],
    )


#: Builder name (without ``make_``) -> function.
BUILDERS: dict[str, Callable[..., onnx.ModelProto]] = {
    "conv_bn_relu": make_conv_bn_relu,
    "sibling_convs": make_sibling_convs,
    "qkv_matmuls": make_qkv_matmuls,
    "split_concat": make_split_concat,
    "transpose_chain": make_transpose_chain,
    "matmul_chain": make_matmul_chain,
    "inception_like": make_inception_like,
    "folding_example": make_folding_example,
}


def build(name: str, **kwargs) -> onnx.ModelProto:
    """Build the toy graph ``name`` (a key of :data:`BUILDERS`, ``make_`` prefix optional)."""
    key = name.removeprefix("make_")
    if key not in BUILDERS:
        raise UnknownName(f"unknown toy graph {name!r}; choose one of {sorted(BUILDERS)}")
    return BUILDERS[key](**kwargs)
