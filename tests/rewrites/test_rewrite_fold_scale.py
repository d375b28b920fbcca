import numpy as np

from xflow.graphs.builders import make_conv_bn_relu
from xflow.rewrites import get_rule

from .toy import assert_negative, assert_positive, count_ops, model, node, w

CONV = get_rule("fold_into_conv")
MM = get_rule("fold_into_matmul")


def test_fold_batchnorm_into_conv():
    (new,) = assert_positive(CONV, make_conv_bn_relu(), 1)
    assert count_ops(new, "BatchNormalization") == 0


def test_fold_mul_and_add_into_conv():
    m = model([node("Conv", ["x", "cw", "cb"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
               node("Mul", ["c", "s"], ["m"]), node("Add", ["m", "t"], ["y"])],
              {"x": (1, 3, 6, 6)}, ["y"],
              {"cw": w(4, 3, 3, 3), "cb": w(4), "s": w(1, 4, 1, 1), "t": w(4, 1, 1)})
    (new,) = assert_positive(CONV, m, 1)  # only the Mul is adjacent to the Conv
    (newer,) = assert_positive(CONV, new, 1)
    assert count_ops(newer, "Mul") == 0 and count_ops(newer, "Add") == 0


def test_fold_rejects_spatially_varying_scale():
    m = model([node("Conv", ["x", "cw"], ["c"], kernel_shape=[1, 1]), node("Mul", ["c", "s"], ["y"])],
              {"x": (1, 3, 4, 4)}, ["y"], {"cw": w(2, 3, 1, 1), "s": w(1, 1, 4, 4)})
    assert_negative(CONV, m, "varies along axis")


def test_fold_mul_into_matmul_and_gemm():
    m = model([node("MatMul", ["x", "a"], ["p"]), node("Mul", ["p", "s"], ["y"]),
               node("Gemm", ["x2", "b", "c"], ["q"], transB=1), node("Add", ["q", "t"], ["z"])],
              {"x": (2, 3, 4), "x2": (3, 4)}, ["y", "z"],
              {"a": w(4, 5), "s": w(5), "b": w(6, 4), "c": w(6), "t": w(1, 6)})
    assert_positive(MM, m, 2)


def test_fold_rejects_matmul_add_and_row_scale():
    m = model([node("MatMul", ["x", "a"], ["p"]), node("Add", ["p", "t"], ["y"])],
              {"x": (2, 4)}, ["y"], {"a": w(4, 5), "t": w(5)})
    assert_negative(MM, m, "ORT fuses itself")
    m2 = model([node("MatMul", ["x", "a"], ["p"]), node("Mul", ["p", "s"], ["y"])],
               {"x": (2, 4)}, ["y"], {"a": w(4, 5), "s": np.ones((2, 1), np.float32)})
    assert_negative(MM, m2, "varies along axis")
