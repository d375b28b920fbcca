from xflow.graphs.builders import make_matmul_chain
from xflow.rewrites import get_rule

from .toy import assert_negative, assert_positive, count_ops, model, node, w

RIGHT = get_rule("matmul_reassoc_right")
LEFT = get_rule("matmul_reassoc_left")
FACTOR = get_rule("factor_matmul_add")
CONCAT = get_rule("concat_matmul_add")


def test_reassoc_right_folds_constant_product():
    m = make_matmul_chain(dims=(16, 32, 8))  # (x W1) W2 -> x (W1 W2): 16*8 < 16*32 + 32*8
    (new,) = assert_positive(RIGHT, m, 1)
    assert count_ops(new, "MatMul") == 1


def test_reassoc_right_rejects_more_expensive_order():
    # low-rank factorisation: (x A) B with A 64x4, B 4x64 is cheaper than x (A B)
    m = model([node("MatMul", ["x", "a"], ["h"]), node("MatMul", ["h", "b"], ["y"])],
              {"x": (8, 64)}, ["y"], {"a": w(64, 4), "b": w(4, 64)})
    assert_negative(RIGHT, m, "not fewer")


def test_reassoc_left_dynamic_chain():
    # x (y C) with x 2x64, y 64x64, C 64x64: (x y) C is far cheaper
    m = model([node("MatMul", ["y", "c"], ["h"]), node("MatMul", ["x", "h"], ["z"])],
              {"x": (2, 64), "y": (64, 64)}, ["z"], {"c": w(64, 64, scale=0.1)})
    assert_positive(LEFT, m, 1)
    m2 = model([node("MatMul", ["y", "c"], ["h"]), node("MatMul", ["x", "h"], ["z"])],
               {"x": (64, 64), "y": (64, 64)}, ["z"], {"c": w(64, 2)})
    assert_negative(LEFT, m2, "not fewer")


def test_factor_matmul_add():
    m = model([node("MatMul", ["x", "b"], ["p"]), node("MatMul", ["x", "c"], ["q"]), node("Add", ["p", "q"], ["y"])],
              {"x": (3, 4)}, ["y"], {"b": w(4, 5), "c": w(4, 5)})
    (new,) = assert_positive(FACTOR, m, 1)
    assert count_ops(new, "MatMul") == 1 and count_ops(new, "Add") == 0


def test_concat_matmul_add_nasrnn_style():
    m = model([node("MatMul", ["x", "wx"], ["p"]), node("MatMul", ["h", "wh"], ["q"]), node("Add", ["p", "q"], ["y"])],
              {"x": (1, 4), "h": (1, 6)}, ["y"], {"wx": w(4, 5), "wh": w(6, 5)})
    (new,) = assert_positive(CONCAT, m, 1)
    assert count_ops(new, "MatMul") == 1 and count_ops(new, "Concat") == 1
    assert_negative(FACTOR, m, "different left operands")


def test_concat_matmul_add_rejects_broadcasting_add():
    m = model([node("MatMul", ["x", "wx"], ["p"]), node("MatMul", ["h", "wh"], ["q"]), node("Add", ["p", "q"], ["y"])],
              {"x": (3, 4), "h": (1, 6)}, ["y"], {"wx": w(4, 5), "wh": w(6, 5)})
    assert_negative(CONCAT, m, "would broadcast")
