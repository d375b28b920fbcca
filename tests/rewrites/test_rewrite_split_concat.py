import numpy as np

from xflow.graphs.builders import make_split_concat
from xflow.rewrites import get_rule

from .toy import assert_negative, assert_positive, count_ops, model, node

SC = get_rule("split_concat_cancel")
CS = get_rule("concat_split_cancel")


def test_split_concat_cancels():
    (new,) = assert_positive(SC, make_split_concat(), 1)
    assert count_ops(new, "Split") == 0 and count_ops(new, "Concat") == 0


def test_split_concat_inside_larger_concat():
    m = model([node("Split", ["x", "s"], ["p0", "p1"], axis=1),
               node("Concat", ["y", "p0", "p1", "y"], ["c"], axis=1)],
              {"x": (1, 4, 3), "y": (1, 2, 3)}, ["c"], {"s": np.array([1, 3], np.int64)})
    (new,) = assert_positive(SC, m, 1)
    assert count_ops(new, "Split") == 0 and count_ops(new, "Concat") == 1


def test_split_concat_rejects_reordered_pieces():
    m = model([node("Split", ["x", "s"], ["p0", "p1"], axis=1),
               node("Concat", ["p1", "p0"], ["c"], axis=1)],
              {"x": (1, 4, 3)}, ["c"], {"s": np.array([2, 2], np.int64)})
    assert_negative(SC, m, "in order")


def test_split_concat_rejects_other_axis():
    m = model([node("Split", ["x", "s"], ["p0", "p1"], axis=1),
               node("Concat", ["p0", "p1"], ["c"], axis=2)],
              {"x": (1, 4, 3)}, ["c"], {"s": np.array([2, 2], np.int64)})
    assert_negative(SC, m, "differs from Concat axis")


def test_concat_split_cancels():
    m = model([node("Concat", ["a", "b"], ["c"], axis=1),
               node("Split", ["c", "s"], ["p0", "p1"], axis=1),
               node("Relu", ["p0"], ["r0"]), node("Relu", ["p1"], ["r1"])],
              {"a": (1, 2, 3), "b": (1, 5, 3)}, ["r0", "r1"], {"s": np.array([2, 5], np.int64)})
    (new,) = assert_positive(CS, m, 1)
    assert count_ops(new, "Concat") == 0 and count_ops(new, "Split") == 0


def test_concat_split_rejects_misaligned_sizes():
    m = model([node("Concat", ["a", "b"], ["c"], axis=1),
               node("Split", ["c", "s"], ["p0", "p1"], axis=1)],
              {"a": (1, 2, 3), "b": (1, 5, 3)}, ["p0", "p1"], {"s": np.array([3, 4], np.int64)})
    assert_negative(CS, m, "differ from Concat input sizes")
