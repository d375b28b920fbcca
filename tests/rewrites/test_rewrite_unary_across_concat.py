from xflow.graphs.builders import make_inception_like, make_split_concat
from xflow.rewrites import get_rule

from .toy import assert_negative, assert_positive, count_ops, model, node

AFTER_CAT = get_rule("unary_after_concat")
BEFORE_CAT = get_rule("unary_before_concat")
AFTER_SPLIT = get_rule("unary_after_split")
BEFORE_SPLIT = get_rule("unary_before_split")


def test_unary_after_concat_inception():
    m = make_inception_like()
    (new,) = assert_positive(AFTER_CAT, m, 1)
    assert count_ops(new, "Relu") == count_ops(m, "Relu") - 3


def test_unary_after_concat_rejects_mixed_ops():
    m = model([node("Relu", ["a"], ["ra"]), node("Sigmoid", ["b"], ["sb"]),
               node("Concat", ["ra", "sb"], ["c"], axis=1)], {"a": (1, 2), "b": (1, 3)}, ["c"])
    assert_negative(AFTER_CAT, m, "different unary ops")


def test_unary_after_concat_rejects_shared_activation():
    m = model([node("Relu", ["a"], ["ra"]), node("Relu", ["b"], ["rb"]),
               node("Concat", ["ra", "rb"], ["c"], axis=1), node("Neg", ["ra"], ["n"])],
              {"a": (1, 2), "b": (1, 3)}, ["c", "n"])
    assert_negative(AFTER_CAT, m, "other consumers")


def test_unary_before_concat_and_split_directions():
    m = make_split_concat(branch_op="Sigmoid")
    assert_positive(BEFORE_CAT, m, 1)      # post_relu(concat) -> concat(relu...)
    assert_positive(AFTER_SPLIT, m, 1)     # split(pre_relu) -> relu(split)
    (hoisted,) = assert_positive(BEFORE_SPLIT, m, 1)  # sigmoid(split pieces) -> split(sigmoid)
    assert count_ops(hoisted, "Sigmoid") == 1


def test_leaky_relu_alpha_must_agree():
    m = model([node("Split", ["x"], ["p0", "p1"], axis=1, num_outputs=2),
               node("LeakyRelu", ["p0"], ["a"], alpha=0.1), node("LeakyRelu", ["p1"], ["b"], alpha=0.2)],
              {"x": (1, 4)}, ["a", "b"], opset=18)
    assert_negative(BEFORE_SPLIT, m, "different unary ops or attributes")


BIN = get_rule("binary_before_split")


def _two_splits(op2="Add"):
    import numpy as np

    s = {"s": np.array([2, 3], np.int64)}
    return model([node("Split", ["a", "s"], ["a0", "a1"], axis=1), node("Split", ["b", "s"], ["b0", "b1"], axis=1),
                  node("Add", ["a0", "b0"], ["y0"]), node(op2, ["a1", "b1"], ["y1"])],
                 {"a": (2, 5), "b": (2, 5)}, ["y0", "y1"], s)


def test_binary_before_split_nasrnn_gates():
    (new,) = assert_positive(BIN, _two_splits(), 1)
    assert count_ops(new, "Split") == 1 and count_ops(new, "Add") == 1


def test_binary_before_split_rejects_mixed_ops():
    assert_negative(BIN, _two_splits("Mul"), "different ops")


def test_unary_before_concat_rejects_shared_concat():
    m = model([node("Concat", ["a", "b"], ["c"], axis=1), node("Relu", ["c"], ["r"]), node("Neg", ["c"], ["n"])],
              {"a": (1, 2), "b": (1, 3)}, ["r", "n"])
    assert_negative(BEFORE_CAT, m, "other consumers")


def test_unary_after_split_rejects_shared_activation():
    m = model([node("Relu", ["x"], ["r"]), node("Split", ["r"], ["p0", "p1"], axis=1, num_outputs=2),
               node("Neg", ["r"], ["n"])], {"x": (1, 4)}, ["p0", "p1", "n"], opset=18)
    assert_negative(AFTER_SPLIT, m, "other consumers")
