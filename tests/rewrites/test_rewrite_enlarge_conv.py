from xflow.graphs.builders import make_sibling_convs
from xflow.rewrites import get_rule

from .toy import assert_negative, assert_positive, model, node, w

ENLARGE = get_rule("enlarge_conv_kernel")
SHRINK = get_rule("shrink_conv_kernel")
MERGE = get_rule("merge_sibling_convs")


def test_enlarge_then_merge():
    m = make_sibling_convs(kernels=(3, 1), out_channels=(4, 4))
    (big,) = assert_positive(ENLARGE, m, 1)
    assert MERGE.match(big), "enlarged kernel should make the siblings mergeable"
    (merged,) = assert_positive(MERGE, big, 1)
    assert sum(n.op_type == "Conv" for n in merged.graph.node) == 1


def test_enlarge_asymmetric_1x3_to_3x3():
    m = model([node("Conv", ["x", "wa"], ["a"], kernel_shape=[1, 3], pads=[0, 1, 0, 1]),
               node("Conv", ["x", "wb"], ["b"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
              {"x": (1, 3, 7, 7)}, ["a", "b"], {"wa": w(2, 3, 1, 3), "wb": w(2, 3, 3, 3)})
    assert_positive(ENLARGE, m, 1)


def test_enlarge_rejects_incompatible_pads():
    # 1x1 without padding next to a 3x3 without padding: outputs have different sizes
    m = model([node("Conv", ["x", "wa"], ["a"], kernel_shape=[1, 1]),
               node("Conv", ["x", "wb"], ["b"], kernel_shape=[3, 3])],
              {"x": (1, 3, 7, 7)}, ["a", "b"], {"wa": w(2, 3, 1, 1), "wb": w(2, 3, 3, 3)})
    assert_negative(ENLARGE, m, "cannot be reached")


def test_enlarge_rejects_different_strides():
    m = model([node("Conv", ["x", "wa"], ["a"], kernel_shape=[1, 1], strides=[2, 2]),
               node("Conv", ["x", "wb"], ["b"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
              {"x": (1, 3, 8, 8)}, ["a", "b"], {"wa": w(2, 3, 1, 1), "wb": w(2, 3, 3, 3)})
    assert_negative(ENLARGE, m, "differ in strides")


def test_shrink_undoes_enlarge():
    m = make_sibling_convs(kernels=(3, 1), out_channels=(4, 4))
    (big,) = assert_positive(ENLARGE, m, 1)
    (small,) = assert_positive(SHRINK, big, 1)
    kernels = sorted(tuple(a.ints) for n in small.graph.node for a in n.attribute if a.name == "kernel_shape")
    assert kernels == [(1, 1), (3, 3)]


def test_shrink_rejects_dense_kernel():
    assert_negative(SHRINK, make_sibling_convs(kernels=(3,), out_channels=(4,)), "no all-zero border")


def test_enlarge_1x3_and_3x1_to_3x3_then_merge():
    m = model([node("Conv", ["x", "wa"], ["a"], kernel_shape=[1, 3], pads=[0, 1, 0, 1]),
               node("Conv", ["x", "wb"], ["b"], kernel_shape=[3, 1], pads=[1, 0, 1, 0])],
              {"x": (1, 3, 7, 7)}, ["a", "b"], {"wa": w(2, 3, 1, 3), "wb": w(2, 3, 3, 1)})
    first = assert_positive(ENLARGE, m, 2)[0]     # either conv can grow to 3x3
    (second,) = assert_positive(ENLARGE, first, 1)
    assert_positive(MERGE, second, 1)
