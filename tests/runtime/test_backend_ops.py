"""Every operator the torch backend emits, against ONNX Runtime, on inputs whose outputs carry signal.

Each case is a small ONNX graph; the torch backend (generated module) and ONNX Runtime
(optimizations off) run it on the same seeded inputs. ``test_every_emitter_is_covered`` fails when
an operator is added to the registry without a case here.
"""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from xflow.errors import DeviceUnavailable, UnknownName, UnsupportedOperator
from xflow.runtime.backend import make_backend_session, torch_cuda_available
from xflow.runtime.backend_lower import LowerOptions
from xflow.runtime.backend_ops import ALIAS_OPS, EMITTERS, supported_ops

from .backend_helpers import assert_close, assert_signal, onnx_model, ort_outputs

R = np.random.default_rng(0)


def f32(*s, scale=1.0):
    return np.asarray(R.standard_normal(s) * scale, dtype=np.float32)


def i64(*v):
    return np.array(v, np.int64)


N = helper.make_node
X4 = [("x", [1, 4, 6, 6])]
X3 = [("x", [2, 3, 8])]


def case(nodes, inputs=None, inits=None, outputs=None, feeds=None, opset=17, rtol=1e-4, atol=1e-4,
         reference="ort"):
    """One test graph; ``reference="lrn_spec"``: the ONNX specification's LRN formula in numpy, for
    the even window sizes ONNX Runtime refuses (and ``onnx.reference`` gets wrong: its channel loop
    runs over the batch dimension)."""
    return dict(nodes=nodes, inputs=inputs or X4, inits=inits or {}, outputs=outputs or [("y", None)],
                feeds=feeds, opset=opset, rtol=rtol, atol=atol, reference=reference)


def _unary(op, **attrs):
    return case([N(op, ["x"], ["y"], **attrs)])


CASES = {
    # convolution and pooling
    "conv_asym_pad_group": case([N("Conv", ["x", "w", "b"], ["y"], pads=[0, 1, 1, 2], strides=[2, 1], group=2)],
                                inits={"w": f32(4, 2, 3, 3), "b": f32(4)}),
    "conv_same_upper": case([N("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])],
                            inits={"w": f32(8, 4, 3, 3)}),
    "conv1d": case([N("Conv", ["x", "w"], ["y"], pads=[1, 1])], inputs=X3, inits={"w": f32(5, 3, 3)}),
    "conv_bn_relu_fused": case([N("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                                N("BatchNormalization", ["c", "s", "bb", "m", "v"], ["bn"], epsilon=1e-3),
                                N("Relu", ["bn"], ["y"])],
                               inits={"w": f32(16, 4, 3, 3), "s": f32(16), "bb": f32(16), "m": f32(16),
                                      "v": np.abs(f32(16)) + 0.5}),
    "conv_add_relu_residual": case([N("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
                                    N("Add", ["x", "c"], ["a"]), N("Relu", ["a"], ["y"])],
                                   inits={"w": f32(4, 4, 3, 3), "b": f32(4)}),
    "conv_clip_hardswish": case([N("Conv", ["x", "w"], ["c"]), N("Clip", ["c", "lo", "hi"], ["k"]),
                                 N("Conv", ["k", "w2"], ["c2"]), N("HardSwish", ["c2"], ["y"])],
                                inits={"w": f32(8, 4, 1, 1), "lo": np.float32(-0.5), "hi": np.float32(0.6),
                                       "w2": f32(8, 8, 1, 1)}),
    "conv_transpose": case([N("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1],
                              output_padding=[1, 1])], inits={"w": f32(4, 3, 3, 3), "b": f32(3)}),
    "maxpool_ceil": case([N("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)]),
    "maxpool_pad": case([N("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])]),
    "avgpool_excl": case([N("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])]),
    "avgpool_incl": case([N("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], count_include_pad=1)]),
    "global_pools": case([N("GlobalAveragePool", ["x"], ["a"]), N("GlobalMaxPool", ["x"], ["b"]),
                          N("Concat", ["a", "b"], ["y"], axis=1)]),
    "lrn_odd": case([N("LRN", ["x"], ["y"], size=3, alpha=0.5, beta=0.75, bias=1.0)]),
    "lrn_even": case([N("LRN", ["x"], ["y"], size=2, alpha=0.9, beta=0.75, bias=2.0)], reference="lrn_spec"),
    # normalization
    "batchnorm": case([N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)],
                      inits={"s": f32(4), "b": f32(4), "m": f32(4), "v": np.abs(f32(4)) + 0.5}),
    "layernorm": case([N("LayerNormalization", ["x", "s", "b"], ["y"], axis=-1, epsilon=1e-5)], inputs=X3,
                      inits={"s": f32(8), "b": f32(8)}),
    "layernorm_two_axes": case([N("LayerNormalization", ["x", "s"], ["y"], axis=1)], inputs=X3,
                               inits={"s": f32(3, 8)}),
    "instancenorm": case([N("InstanceNormalization", ["x", "s", "b"], ["y"])], inits={"s": f32(4), "b": f32(4)}),
    "softmax": case([N("Softmax", ["x"], ["y"], axis=1)], inputs=X3),
    "softmax_opset11_coerced": case([N("Softmax", ["x"], ["y"], axis=1)], inputs=X3, opset=11),
    "logsoftmax": case([N("LogSoftmax", ["x"], ["y"], axis=-1)], inputs=X3),
    # linear algebra
    "gemm_variants": case([N("Flatten", ["x"], ["f"], axis=1), N("Gemm", ["f", "gw", "gb"], ["g"], transB=1),
                           N("Gemm", ["g", "gw2", "gb2"], ["y"], alpha=0.5, beta=2.0, transA=0)],
                          inits={"gw": f32(5, 144), "gb": f32(5), "gw2": f32(5, 3), "gb2": f32(3)}),
    "matmul_bias_linear_fused": case([N("MatMul", ["x", "w"], ["m"]), N("Add", ["m", "b"], ["y"])], inputs=X3,
                                     inits={"w": f32(8, 6), "b": f32(6)}),
    "matmul_batched": case([N("Transpose", ["x"], ["t"], perm=[0, 2, 1]), N("MatMul", ["x", "t"], ["y"])],
                           inputs=X3),
    "einsum": case([N("Einsum", ["x", "w"], ["y"], equation="bij,jk->bik")], inputs=X3, inits={"w": f32(8, 2)}),
    # elementwise binary / variadic
    "add_sub_mul_div": case([N("Add", ["x", "k"], ["a"]), N("Sub", ["a", "x"], ["s"]), N("Mul", ["s", "x"], ["m"]),
                             N("Div", ["m", "d"], ["y"])],
                            inits={"k": f32(1, 4, 1, 1), "d": np.float32(1.7)}),
    "div_int_truncates": case([N("Div", ["a", "b"], ["y"])], inputs=[("a", [6], np.int64)],
                              inits={"b": i64(-4)}, outputs=[("y", None, np.int64)],
                              feeds={"a": i64(-9, -5, -1, 3, 7, 10)}),
    "pow_sqrt_reciprocal": case([N("Abs", ["x"], ["ab"]), N("Pow", ["ab", "e"], ["p"]), N("Sqrt", ["p"], ["s"]),
                                 N("Pow", ["s", "e2"], ["q"]), N("Add", ["q", "one"], ["q1"]),
                                 N("Reciprocal", ["q1"], ["y"])],
                                inits={"e": np.float32(3.0), "e2": np.float32(2.0), "one": np.float32(1.0)}),
    "pow_tensor_exponent": case([N("Abs", ["x"], ["a"]), N("Add", ["a", "one"], ["a1"]), N("Pow", ["a1", "x"], ["y"])],
                                inits={"one": np.float32(1.0)}),
    "mod_fmod_float": case([N("Mod", ["x", "m"], ["y"], fmod=1)], inits={"m": np.float32(0.7)}),
    "mod_int_floor": case([N("Mod", ["a", "m"], ["y"])], inputs=[("a", [6], np.int64)], inits={"m": i64(-4)},
                          outputs=[("y", None, np.int64)], feeds={"a": i64(-9, -5, -1, 3, 7, 10)}),
    "sum_mean_max_min": case([N("Sum", ["x", "x", "k"], ["s"]), N("Mean", ["x", "k"], ["mn"]),
                              N("Max", ["s", "mn"], ["mx"]), N("Min", ["mx", "k"], ["y"])],
                             inits={"k": f32(1, 4, 6, 6)}),
    "prelu": case([N("PRelu", ["x", "sl"], ["y"])], inits={"sl": f32(4, 1, 1)}),
    "compare_where": case([N("Greater", ["x", "k"], ["g"]), N("Less", ["x", "k"], ["l"]),
                           N("Equal", ["g", "l"], ["e"]), N("Not", ["e"], ["ne"]),
                           N("Or", ["g", "ne"], ["o"]), N("And", ["o", "l"], ["an"]), N("Xor", ["an", "g"], ["xo"]),
                           N("GreaterOrEqual", ["x", "k"], ["ge"]), N("LessOrEqual", ["x", "k"], ["le"]),
                           N("And", ["ge", "le"], ["gl"]), N("Or", ["gl", "xo"], ["c"]),
                           N("Where", ["c", "x", "k"], ["y"])],
                          inits={"k": f32(1, 4, 1, 1)}),
    # elementwise unary
    "relu": _unary("Relu"), "sigmoid": _unary("Sigmoid"), "tanh": _unary("Tanh"),
    "leakyrelu": _unary("LeakyRelu", alpha=0.2), "hardsigmoid": _unary("HardSigmoid", alpha=0.3, beta=0.4),
    "hardswish": _unary("HardSwish"), "elu": _unary("Elu", alpha=0.7), "selu": _unary("Selu"),
    "selu_custom": _unary("Selu", alpha=1.2, gamma=0.9), "celu": _unary("Celu", alpha=0.5),
    "softplus": _unary("Softplus"), "softsign": _unary("Softsign"), "mish": case([N("Mish", ["x"], ["y"])], opset=18),
    "thresholded_relu": _unary("ThresholdedRelu", alpha=0.3),
    "gelu_op": case([N("Gelu", ["x"], ["y"])], opset=20), "gelu_tanh_op": case([N("Gelu", ["x"], ["y"], approximate="tanh")], opset=20),
    "erf": _unary("Erf"), "exp": _unary("Exp"), "neg": _unary("Neg"), "abs": _unary("Abs"),
    "floor_ceil_round_sign": case([N("Floor", ["x"], ["a"]), N("Ceil", ["x"], ["b"]), N("Round", ["x"], ["r"]),
                                   N("Sign", ["x"], ["s"]), N("Sum", ["a", "b", "r", "s"], ["y"])]),
    "sin_cos": case([N("Sin", ["x"], ["a"]), N("Cos", ["x"], ["b"]), N("Add", ["a", "b"], ["y"])]),
    "log": case([N("Abs", ["x"], ["a"]), N("Log", ["a"], ["y"])]),
    "isnan": case([N("Log", ["x"], ["l"]), N("IsNaN", ["l"], ["y"])], outputs=[("y", None, bool)]),
    "clip_const_and_relu6": case([N("Clip", ["x", "lo", "hi"], ["a"]), N("Clip", ["x", "z", "six"], ["b"]),
                                  N("Mul", ["x", "k"], ["xb"]), N("Clip", ["xb", "z", "six"], ["c"]),
                                  N("Sum", ["a", "b", "c"], ["y"])],
                                 inits={"lo": np.float32(-0.3), "hi": np.float32(0.8), "z": np.float32(0.0),
                                        "six": np.float32(6.0), "k": np.float32(5.0)}),
    "clip_tensor_bounds": case([N("Clip", ["x", "lo"], ["y"])], inputs=X4 + [("lo", [])]),
    "gelu_erf_pattern_fused": case([N("Div", ["x", "r2"], ["d"]), N("Erf", ["d"], ["e"]), N("Add", ["e", "one"], ["a"]),
                                    N("Mul", ["x", "a"], ["m"]), N("Mul", ["m", "half"], ["y"])],
                                   inits={"r2": np.float32(np.sqrt(2.0)), "one": np.float32(1.0),
                                          "half": np.float32(0.5)}),
    "cast_castlike": case([N("Mul", ["x", "k"], ["m"]), N("Cast", ["m"], ["c"], to=7), N("Cast", ["c"], ["f"], to=1),
                           N("CastLike", ["c", "x"], ["g"]), N("Add", ["f", "g"], ["y"])],
                          inits={"k": np.float32(3.0)}),
    # shapes and data movement
    "reshape_flatten_squeeze_unsqueeze": case([N("Reshape", ["x", "shp"], ["r"]), N("Unsqueeze", ["r", "ax"], ["u"]),
                                               N("Squeeze", ["u", "ax"], ["s"]), N("Flatten", ["s"], ["y"], axis=2)],
                                              inits={"shp": i64(0, -1, 3), "ax": i64(1)}),
    "transpose_default_and_perm": case([N("Transpose", ["x"], ["t"]), N("Transpose", ["t"], ["y"], perm=[2, 0, 1, 3])]),
    "concat_negative_axis": case([N("Relu", ["x"], ["r"]), N("Concat", ["r", "x"], ["y"], axis=-3)]),
    "split_attr_and_input": case([N("Split", ["x", "sp"], ["a", "b"], axis=1), N("Split", ["x"], ["c", "d"], axis=-1, num_outputs=2),
                                  N("Mul", ["a", "b"], ["ab"]), N("Sub", ["c", "d"], ["cd"]),
                                  N("ReduceSum", ["ab"], ["y"], keepdims=0), N("Identity", ["cd"], ["z"])],
                                 inits={"sp": i64(2, 2)}, outputs=[("y", None), ("z", None)], opset=18),
    "slice_steps_negative": case([N("Slice", ["x", "st", "en", "ax", "sp"], ["a"]),
                                  N("Slice", ["x", "st2", "en2", "ax2", "sp2"], ["b"]),
                                  N("Concat", ["a", "b"], ["y"], axis=2)],
                                 inits={"st": i64(1, -1), "en": i64(4, -7), "ax": i64(1, 2), "sp": i64(2, -2),
                                        "st2": i64(0, 5), "en2": i64(2, -100), "ax2": i64(1, -1), "sp2": i64(1, -1)}),
    "slice_opset9_attrs": case([N("Slice", ["x"], ["y"], starts=[1, 0], ends=[3, 4], axes=[1, 3])], opset=9),
    "gather_const_and_tensor_indices": case([N("Gather", ["x", "idx"], ["a"], axis=1),
                                             N("Gather", ["x", "i0"], ["b"], axis=-1),
                                             N("Gather", ["w", "ti"], ["c"], axis=0),
                                             N("ReduceSum", ["a"], ["sa"], keepdims=0),
                                             N("ReduceSum", ["b"], ["sb"], keepdims=0),
                                             N("ReduceSum", ["c"], ["sc"], keepdims=0),
                                             N("Sum", ["sa", "sb", "sc"], ["y"])],
                                            inputs=X4 + [("ti", [2, 2], np.int64)],
                                            inits={"idx": np.array([[3, -1], [0, 2]], np.int64), "i0": np.array(2, np.int64),
                                                   "w": f32(5, 3)},
                                            feeds={"ti": np.array([[1, -2], [4, 0]], np.int64)}),
    "gather_elements": case([N("GatherElements", ["x", "i"], ["y"], axis=1)], inputs=X3,
                            inits={"i": np.array(R.integers(-3, 3, size=(2, 2, 8)), np.int64)}),
    "expand_tile": case([N("Expand", ["k", "shp"], ["e"]), N("Add", ["e", "x"], ["a"]), N("Tile", ["a", "rep"], ["y"])],
                        inits={"k": f32(4, 1, 6), "shp": i64(1, 4, 6, 6), "rep": i64(1, 1, 2, 1)}),
    "pad_modes": case([N("Pad", ["x", "p"], ["a"], mode="reflect"), N("Pad", ["x", "p"], ["b"], mode="edge"),
                       N("Pad", ["x", "p", "v"], ["c"], mode="constant"), N("Sum", ["a", "b", "c"], ["y"])],
                      inits={"p": i64(0, 0, 1, 2, 0, 0, 2, 1), "v": np.float32(0.5)}),
    "pad_axes_and_crop": case([N("Pad", ["x", "p", "", "ax"], ["a"]), N("Pad", ["a", "n"], ["y"])],
                              inits={"p": i64(1, 2, 0, 1), "ax": i64(2, 3), "n": i64(0, 0, -1, 0, 0, 0, 0, -1)},
                              opset=18),
    "shape_size_constantofshape_range": case([N("Shape", ["x"], ["s"], start=1), N("Size", ["x"], ["n"]),
                                              N("ConstantOfShape", ["s"], ["c"], value=helper.make_tensor("v", 1, [1], [0.5])),
                                              N("Add", ["c", "x"], ["y"]),
                                              N("Range", ["z", "lim", "step"], ["r"]), N("Add", ["r", "n"], ["z2"])],
                                             inputs=X4 + [("lim", [], np.int64)], inits={"z": np.array(0, np.int64),
                                                                                       "step": np.array(2, np.int64)},
                                             outputs=[("y", None), ("z2", None, np.int64)],
                                             feeds={"lim": np.array(9, np.int64)}),
    "constant_node": case([N("Constant", [], ["k"], value=helper.make_tensor("v", 1, [4, 1, 1], [0.5, -1.0, 2.0, 3.0])),
                           N("Mul", ["x", "k"], ["y"])]),
    "depth_space": case([N("DepthToSpace", ["x"], ["a"], blocksize=2, mode="DCR"),
                         N("SpaceToDepth", ["a"], ["b"], blocksize=2), N("DepthToSpace", ["b"], ["y"], blocksize=2, mode="CRD")]),
    "resize_nearest_linear": case([N("Resize", ["x", "", "sc"], ["a"], mode="nearest", coordinate_transformation_mode="asymmetric",
                                     nearest_mode="floor"),
                                   N("Resize", ["x", "", "sc"], ["b"], mode="linear"),
                                   N("Resize", ["x", "", "sc"], ["c"], mode="linear", coordinate_transformation_mode="align_corners"),
                                   N("Resize", ["x", "", "sc"], ["d"], mode="nearest", coordinate_transformation_mode="half_pixel"),
                                   N("Sum", ["a", "b", "c", "d"], ["y"])],
                                  inits={"sc": np.array([1, 1, 2, 2], np.float32)}, rtol=1e-3, atol=1e-3),
    # reductions
    "reductions_opset17": case([N("ReduceMean", ["x"], ["a"], axes=[1], keepdims=1), N("ReduceMax", ["x"], ["b"], axes=[1]),
                                N("ReduceMin", ["x"], ["c"], axes=[-3]), N("ReduceSum", ["x", "ax"], ["d"]),
                                N("ReduceL2", ["x"], ["e"], axes=[1]), N("ReduceL1", ["x"], ["f"], axes=[1]),
                                N("ReduceSumSquare", ["x"], ["g"], axes=[1]), N("ReduceLogSumExp", ["x"], ["h"], axes=[1]),
                                N("Abs", ["x"], ["ab"]), N("ReduceLogSum", ["ab"], ["i"], axes=[1]),
                                N("ReduceProd", ["x"], ["j"], axes=[1]),
                                N("Sum", ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"], ["y"])],
                               inits={"ax": i64(1)}),
    "reducemean_opset18_axes_input_all": case([N("ReduceMean", ["x", "ax"], ["a"], keepdims=0), N("ReduceMean", ["x"], ["b"]),
                                               N("Add", ["a", "b"], ["y"])], inits={"ax": i64(2, 3)}, opset=18),
    "argmax_argmin": case([N("ArgMax", ["x"], ["a"], axis=1), N("ArgMin", ["x"], ["b"], axis=2, keepdims=0,
                                                                      select_last_index=1)],
                          outputs=[("a", None, np.int64), ("b", None, np.int64)]),
    "cumsum": case([N("CumSum", ["x", "ax"], ["a"]), N("CumSum", ["x", "ax"], ["b"], reverse=1, exclusive=1),
                    N("Add", ["a", "b"], ["y"])], inits={"ax": np.array(2, np.int64)}),
    "topk": case([N("TopK", ["x", "k"], ["v", "i"], axis=-1)], inits={"k": i64(3)},
                 outputs=[("v", None), ("i", None, np.int64)]),
}


def _lrn_spec(x, size, alpha, beta, bias):
    """ONNX LRN: square_sum over channels max(0, c - floor((size-1)/2)) .. min(C-1, c + ceil((size-1)/2))."""
    sq = np.zeros_like(x)
    C = x.shape[1]
    for c in range(C):
        lo, hi = max(0, c - (size - 1) // 2), min(C - 1, c + -(-(size - 1) // 2))
        sq[:, c] = np.sum(x[:, lo:hi + 1] ** 2, axis=1)
    return (x / (bias + alpha / size * sq) ** beta).astype(x.dtype)


def _feeds(spec, inputs):
    feeds = dict(spec["feeds"] or {})
    for inp in inputs:
        name, shape = inp[0], inp[1]
        if name not in feeds:
            feeds[name] = f32(*shape) if len(inp) < 3 else np.zeros(shape, inp[2])
    return feeds


@pytest.mark.parametrize("name", sorted(CASES))
def test_operator_matches_onnxruntime(name):
    spec = CASES[name]
    m = onnx_model(spec["nodes"], spec["inputs"], spec["outputs"], spec["inits"], opset=spec["opset"])
    feeds = _feeds(spec, spec["inputs"])
    if spec["reference"] == "ort":
        ref = ort_outputs(m, feeds)
    else:
        a = {k: v for n in spec["nodes"] for k, v in ((x.name, helper.get_attribute_value(x)) for x in n.attribute)}
        ref = [_lrn_spec(feeds["x"], a["size"], a["alpha"], a["beta"], a["bias"])]
    assert_signal(ref)
    got = make_backend_session(m, "torch").run(feeds)
    assert_close(got, ref, rtol=spec["rtol"], atol=spec["atol"])


def _covered() -> set[str]:
    ops = set()
    for spec in CASES.values():
        ops.update(n.op_type for n in spec["nodes"])
    return ops


def test_every_emitter_is_covered():
    missing = sorted((set(EMITTERS) | ALIAS_OPS) - _covered() - {"Dropout"})
    assert not missing, f"operators without a test case against ONNX Runtime: {missing}"
    assert "Dropout" in supported_ops() and "LRN" in supported_ops() and "Sum" in supported_ops()


@pytest.mark.parametrize("layout,onednn", [("contiguous", "off"), ("channels_last", "off"), ("channels_last", "on"),
                                           ("channels_last", "graph"), ("contiguous", "graph")])
def test_fused_conv_paths_agree_in_every_layout(layout, onednn):
    """Conv+BN+residual Add+Relu through F.conv2d and through oneDNN, NCHW and channels-last."""
    nodes = [N("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             N("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"]),
             N("Add", ["bn", "x"], ["a"]), N("Relu", ["a"], ["y"])]
    inits = {"w": f32(8, 8, 3, 3, scale=0.3), "s": f32(8), "b": f32(8), "m": f32(8), "v": np.abs(f32(8)) + 0.5}
    m = onnx_model(nodes, [("x", [1, 8, 16, 16])], [("y", None)], inits)
    feeds = {"x": f32(1, 8, 16, 16)}
    ref = ort_outputs(m, feeds)
    assert_signal(ref)
    s = make_backend_session(m, "torch", lower=LowerOptions(layout=layout, onednn=onednn, onednn_min_flops=0))
    assert s.program.fused_nodes == 3 and len(s.program.kernels) == 1
    assert ("_convolution_pointwise" in s.program.kernels[0].line) == (onednn == "on")
    if onednn == "graph":  # out-of-place ops, which the oneDNN Graph fuser matches
        assert "relu_(" not in s.program.kernels[0].line and ".add_(" not in s.program.kernels[0].line
    assert_close(s.run(feeds), ref)


def test_unfused_lowering_keeps_one_kernel_per_node():
    nodes = [N("Conv", ["x", "w"], ["c"]), N("Relu", ["c"], ["y"])]
    m = onnx_model(nodes, X4, [("y", None)], {"w": f32(4, 4, 1, 1)})
    s = make_backend_session(m, "torch", lower=LowerOptions(fuse=False))
    assert [k.op for k in s.program.kernels] == ["Conv", "Relu"]


def test_shared_conv_output_is_not_fused():
    """A conv output read twice must stay visible: fusing its ReLU would drop the other reader."""
    nodes = [N("Conv", ["x", "w"], ["c"]), N("Relu", ["c"], ["r"]), N("Sub", ["r", "c"], ["y"])]
    m = onnx_model(nodes, X4, [("y", None)], {"w": f32(4, 4, 1, 1)})
    feeds = {"x": f32(1, 4, 6, 6)}
    s = make_backend_session(m, "torch")
    assert [k.op for k in s.program.kernels] == ["Conv", "Relu", "Sub"]
    assert_close(s.run(feeds), ort_outputs(m, feeds))


def test_unsupported_operator_is_named():
    m = onnx_model([N("NonZero", ["x"], ["y"])], [("x", [2, 3])], [("y", None, np.int64)])
    with pytest.raises(UnsupportedOperator, match="NonZero.*not supported by the torch backend"):
        make_backend_session(m, "torch")


def test_unknown_backend_and_missing_gpu_are_clean_errors():
    m = onnx_model([N("Relu", ["x"], ["y"])], [("x", [2, 3])], [("y", None)])
    with pytest.raises(UnknownName, match="unknown backend 'tpu'"):
        make_backend_session(m, "tpu")
    if not torch_cuda_available():
        with pytest.raises(DeviceUnavailable, match="torch-cuda"):
            make_backend_session(m, "torch-cuda")


@pytest.mark.parametrize("impl", ["native", "onednn", "nnpack"])
def test_every_convolution_implementation_matches(impl, monkeypatch):
    """The kernels the tuned lowering may pick (forced here), on Conv+BN+Add+Relu and a plain Conv."""
    from xflow.runtime import backend_tune

    monkeypatch.setattr(backend_tune, "conv_choice", lambda c, **kw: impl)
    nodes = [N("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             N("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"]),
             N("Add", ["bn", "x"], ["a"]), N("Relu", ["a"], ["r"]),
             N("Conv", ["r", "w2", "b2"], ["y"], pads=[2, 2, 2, 2])]
    inits = {"w": f32(8, 8, 3, 3, scale=0.3), "s": f32(8), "b": f32(8), "m": f32(8), "v": np.abs(f32(8)) + 0.5,
             "w2": f32(4, 8, 5, 5, scale=0.2), "b2": f32(4)}
    m = onnx_model(nodes, [("x", [1, 8, 12, 12])], [("y", None)], inits)
    feeds = {"x": f32(1, 8, 12, 12)}
    ref = ort_outputs(m, feeds)
    assert_signal(ref)
    s = make_backend_session(m, "torch", lower=LowerOptions(onednn="tuned"))
    marker = {"native": "F.conv2d(", "onednn": "_convolution_pointwise", "nnpack": "_nnpack_spatial_convolution("}[impl]
    assert all(marker in k.line for k in s.program.kernels)
    assert_close(s.run(feeds), ref)


def test_conv_choice_is_measured_and_cached(tmp_path, monkeypatch):
    from xflow.runtime import backend_tune

    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path))
    m = onnx_model([N("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), N("Relu", ["c"], ["y"])],
                   [("x", [1, 16, 20, 20])], [("y", None)], {"w": f32(16, 16, 3, 3)})
    seen = []
    real = backend_tune.conv_choice

    def spy(c, **kw):
        seen.append(c.name)
        return real(c, rounds=3, warmup=1, **kw)

    monkeypatch.setattr(backend_tune, "conv_choice", spy)
    s = make_backend_session(m, "torch", lower=LowerOptions(onednn="tuned"))
    assert seen and s.program.options.onednn == "tuned"
    feeds = {"x": f32(1, 16, 20, 20)}
    assert_close(s.run(feeds), ort_outputs(m, feeds))


@pytest.mark.parametrize("cin,cout,hw,k,stride,group,want", [
    (64, 64, 28, 1, 1, 1, False),    # 1x1 on 784 pixels: F.conv2d's GEMM wins (oneDNN's fixed cost)
    (64, 192, 28, 3, 1, 1, True),    # 173 MFLOP 3x3: oneDNN's brgemm kernel
    (96, 208, 7, 3, 1, 1, False),    # 17.6 MFLOP 3x3 on 49 pixels: F.conv2d
    (448, 384, 3, 3, 1, 1, True),    # 9 output pixels: oneDNN
    (2048, 384, 3, 1, 1, 1, True),   # 1x1 with 9 output pixels: oneDNN
    (32, 32, 16, 3, 2, 1, True),     # strided, small: oneDNN
    (16, 16, 32, 3, 1, 16, True),    # depthwise: oneDNN
    (16, 64, 8, 3, 1, 1, False),     # below the FLOP floor: F.conv2d
])
def test_auto_onednn_follows_the_shape_rule(cin, cout, hw, k, stride, group, want):
    """``onednn="auto"`` picks the kernel per convolution by shape (mutants: the FLOP threshold
    alone, ignoring strides, groups or the pixel count all flip at least one case)."""
    pad = k // 2
    m = onnx_model([N("Conv", ["x", "w"], ["c"], pads=[pad] * 4, strides=[stride] * 2, group=group),
                    N("Relu", ["c"], ["y"])],
                   [("x", [1, cin, hw, hw])], [("y", None)], {"w": f32(cout, cin // group, k, k, scale=0.1)})
    s = make_backend_session(m, "torch", lower=LowerOptions(onednn="auto"))
    assert s.program.options.onednn == "auto"
    assert ("_convolution_pointwise" in s.program.kernels[0].line) is want
    feeds = {"x": f32(1, cin, hw, hw)}
    assert_close(s.run(feeds), ort_outputs(m, feeds))


def test_tuning_keeps_the_rules_choice_when_nothing_is_significant(tmp_path, monkeypatch):
    """The tuner's baseline (kept unless a candidate is significantly faster) is the shape rule's
    choice, not always F.conv2d: on a noisy machine a 173-MFLOP 3x3 convolution stays on oneDNN."""
    from xflow.runtime import backend_tune

    monkeypatch.setenv("XFLOW_CACHE", str(tmp_path))
    seen = {}

    class Undecided:
        busy = True

        def __init__(self, baseline):
            self.baseline = baseline

        def best(self, candidates):
            return self.baseline, None

        def median_ms(self, name):
            return 1.0

    def fake_measure(variants, *, baseline, **kw):
        seen["baseline"], seen["names"] = baseline, list(variants)
        return Undecided(baseline)

    monkeypatch.setattr(backend_tune, "measure", fake_measure)
    m = onnx_model([N("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), N("Relu", ["c"], ["y"])],
                   [("x", [1, 64, 28, 28])], [("y", None)], {"w": f32(192, 64, 3, 3, scale=0.1)})
    s = make_backend_session(m, "torch", lower=LowerOptions(onednn="tuned"))
    assert seen["baseline"] == "onednn" and "native" in seen["names"]
    assert "_convolution_pointwise" in s.program.kernels[0].line
